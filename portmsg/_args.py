"""Argument checks shared by every public entry point: one rule per kind of argument, the stdlib's messages.

The hot paths test `type(x) is int and 0 <= x` inline and call these only
when that fails, so a well-formed call pays nothing here.  Checks run in the
stdlib's order: the socket, then each argument's conversion (TypeError,
OverflowError), then its value (ValueError), then platform rules.
"""

from __future__ import annotations

import operator
import socket
import sys
from typing import Any

__all__ = ["INT_MAX", "INT_MIN", "c_int", "listed", "readable", "sock_of", "ssize", "writable"]

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
_SOCKET = socket.socket


def sock_of(obj: object) -> socket.socket:
    """The socket.socket behind obj, or TypeError.

    Accepts a socket.socket (or subclass) and the wrappers frameworks hand
    out around one: asyncio's TransportSocket (`transport.get_extra_info
    ("socket")`) and trio's socket objects, both of which keep the real
    socket as `_sock`.
    """
    if isinstance(obj, _SOCKET):
        return obj
    inner = getattr(obj, "_sock", None)
    if isinstance(inner, _SOCKET):
        return inner
    msg = f"expected a socket.socket, not {type(obj).__name__}"
    if hasattr(obj, "fileno"):  # uvloop's PseudoSocket, say: it keeps no socket.socket inside
        msg += " (asyncio's TransportSocket and trio's sockets are taken; pass the socket itself otherwise)"
    raise TypeError(msg)


def ssize(value: Any, negative: str | None = None) -> int:
    """A size as the stdlib converts it (Py_ssize_t); ValueError(negative) below 0 unless negative is None."""
    size = operator.index(value)
    if not -sys.maxsize - 1 <= size <= sys.maxsize:
        msg = f"cannot fit '{type(value).__name__}' into an index-sized integer"
        raise OverflowError(msg)
    if size < 0 and negative is not None:
        raise ValueError(negative)
    return size


def c_int(value: Any) -> int:
    """A C int (flags, levels, types) as the stdlib converts it: OverflowError outside its range."""
    number = operator.index(value)
    if number > INT_MAX:
        msg = "signed integer is greater than maximum"
        raise OverflowError(msg)
    if number < INT_MIN:
        msg = "signed integer is less than minimum"
        raise OverflowError(msg)
    return number


def listed(items: Any, error: str) -> list[Any]:
    """list(items), or TypeError(error) when items is not iterable."""
    try:
        return list(items)
    except TypeError:
        raise TypeError(error) from None


def readable(ffi: Any, item: object) -> Any:
    """A cffi view of a bytes-like object the C side reads; the stdlib's TypeError otherwise."""
    try:
        return ffi.from_buffer(item)
    except TypeError:
        msg = f"a bytes-like object is required, not '{type(item).__name__}'"
        raise TypeError(msg) from None


def writable(ffi: Any, items: list[Any], error: str) -> list[Any]:
    """Cffi views of writable buffers the C side fills; TypeError(error) otherwise."""
    try:
        chars = ffi.typeof("char[]")
        return [ffi.from_buffer(chars, item, True) for item in items]  # noqa: FBT003 - require_writable
    except (TypeError, BufferError):
        raise TypeError(error) from None
