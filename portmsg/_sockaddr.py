"""Socket addresses: native sockaddr bytes <-> the forms the stdlib's socket methods use.

Pure Python over a table of constants (the compiled module's, or any
other platform's), so both platforms' layouts can be checked anywhere.
"""

from __future__ import annotations

import operator
import os
import socket
import struct
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["SockaddrCodec"]

_SIN = struct.Struct("!H4s")  # port, address (after the family field)
_SIN6 = struct.Struct("!HI16s")  # port, flowinfo, address
_SCOPE = struct.Struct("=I")
_V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
_MAX_PORT = 0xFFFF
_MAX_FLOWINFO = 0xFFFFF  # 20 bits
_CACHE_SIZE = 1024  # distinct senders remembered; a server talks to a few, a scan clears it


class SockaddrCodec:
    """Encode and decode one platform's sockaddr layouts.

    Args:
        constants: AF_INET, AF_INET6, optionally AF_UNIX, and the layout facts
            PM_SA_FAMILY_OFFSET / PM_SA_FAMILY_SIZE (and PM_SUN_PATH_OFFSET /
            PM_SUN_PATH_SIZE where AF_UNIX exists).

    """

    def __init__(self, constants: Mapping[str, int]) -> None:
        self._family_offset = constants["PM_SA_FAMILY_OFFSET"]
        self._family = struct.Struct("=" + {1: "B", 2: "H"}[constants["PM_SA_FAMILY_SIZE"]])
        self._body = self._family_offset + self._family.size
        self._af_inet = constants["AF_INET"]
        self._af_inet6 = constants["AF_INET6"]
        self._af_unix = constants.get("AF_UNIX") if "PM_SUN_PATH_OFFSET" in constants else None
        self._sun_path = constants.get("PM_SUN_PATH_OFFSET", 0)
        self._sun_path_size = constants.get("PM_SUN_PATH_SIZE", 0)
        self._cache: dict[bytes, Any] = {}

    def decode(self, raw: bytes) -> Any:
        """A sockaddr as the stdlib's socket methods return it (None for an empty one)."""
        try:  # a subscript, not dict.get: see _glue.receiver (free-threaded 3.13)
            cached = self._cache[raw]
        except KeyError:
            cached = None
        if cached is not None:
            return cached
        if not raw:
            return None
        (family,) = self._family.unpack_from(raw, self._family_offset)
        body = self._body
        address: Any
        if family == self._af_inet and len(raw) >= body + _SIN.size:
            port, packed = _SIN.unpack_from(raw, body)
            address = (socket.inet_ntop(socket.AF_INET, packed), port)
        elif family == self._af_inet6 and len(raw) >= body + _SIN6.size + _SCOPE.size:
            port, flowinfo, packed = _SIN6.unpack_from(raw, body)
            (scope,) = _SCOPE.unpack_from(raw, body + _SIN6.size)
            host = socket.inet_ntop(socket.AF_INET6, packed)
            if scope:  # the stdlib formats scoped addresses with getnameinfo ("fe80::1%eth0")
                flags = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
                host = socket.getnameinfo((host, port, flowinfo, scope), flags)[0]
            address = (host, port, flowinfo, scope)
        elif family == self._af_unix:
            path = raw[self._sun_path :]
            if path[:1] == b"\0":  # Linux abstract namespace: bytes, as the stdlib gives them
                return path
            return os.fsdecode(path.split(b"\0", 1)[0])
        else:
            return (family, raw[body : body + 14].ljust(14, b"\0"))
        if len(self._cache) >= _CACHE_SIZE:
            self._cache.clear()
        self._cache[raw] = address
        return address

    def family_name(self, family: int) -> str:
        """AF_INET, AF_INET6, AF_UNIX or the number, as error messages name a family."""
        names = {self._af_inet: "AF_INET", self._af_inet6: "AF_INET6", self._af_unix: "AF_UNIX"}
        return names.get(family, f"family {family}")

    def is_ipv4_mapped(self, raw: bytes) -> bool:
        """Whether sockaddr bytes hold an IPv4-mapped IPv6 address (::ffff:a.b.c.d)."""
        if len(raw) < self._body + _SIN6.size:
            return False
        (family,) = self._family.unpack_from(raw, self._family_offset)
        start = self._body + 6  # after the port and the flow info
        return family == self._af_inet6 and raw[start : start + 12] == _V4_MAPPED

    def encode(self, family: int, address: Any, caller: str = "sendmsg") -> bytes:
        """A stdlib-style address for a socket of `family`, as sockaddr bytes (errors as the stdlib's)."""
        if family in (self._af_inet, self._af_inet6):
            return self._encode_inet(family, address, caller)
        if self._af_unix is not None and family == self._af_unix:
            path = os.fsencode(address) if isinstance(address, (str, os.PathLike)) else bytes(address)
            limit = self._sun_path_size
            if len(path) > limit or (path[:1] != b"\0" and len(path) >= limit):
                msg = "AF_UNIX path too long"
                raise OSError(msg)
            return self._header(family, self._sun_path) + path
        msg = f"{caller}(): bad family {family!r}"
        raise OSError(msg)

    def _header(self, family: int, size: int) -> bytes:
        header = bytearray(size)
        self._family.pack_into(header, self._family_offset, family)  # BSD's sa_len stays 0: namelen says it
        return bytes(header)

    def _encode_inet(self, family: int, address: Any, caller: str) -> bytes:
        v6 = family == self._af_inet6
        name = "AF_INET6" if v6 else "AF_INET"
        if not isinstance(address, tuple):
            msg = f"{caller}(): {name} address must be tuple, not {type(address).__name__}"
            raise TypeError(msg)
        if not (2 <= len(address) <= (4 if v6 else 2)):  # noqa: PLR2004
            # CPython's own words (socketmodule.c, getsockaddrarg's PyArg_ParseTuple formats).
            msg = (
                "AF_INET6 address must be a tuple (host, port[, flowinfo[, scopeid]])"
                if v6
                else "AF_INET address must be a pair (host, port)"
            )
            raise TypeError(msg)
        host, port = address[0], operator.index(address[1])
        flowinfo = operator.index(address[2]) if len(address) > 2 else 0  # noqa: PLR2004
        scope = operator.index(address[3]) if len(address) > 3 else 0  # noqa: PLR2004
        if not 0 <= port <= _MAX_PORT:
            msg = f"{caller}(): port must be 0-65535."
            raise OverflowError(msg)
        if not 0 <= flowinfo <= _MAX_FLOWINFO:
            msg = f"{caller}(): flowinfo must be 0-1048575."
            raise OverflowError(msg)
        packed, scope = _resolve(v6, host, scope)
        if v6:
            return self._header(family, self._body) + _SIN6.pack(port, flowinfo, packed) + _SCOPE.pack(scope)
        return self._header(family, self._body) + _SIN.pack(port, packed) + bytes(8)


def _resolve(v6: bool, host: object, scope: int) -> tuple[bytes, int]:  # noqa: FBT001
    """Host text (or a name) -> packed address and scope id, as the stdlib resolves it."""
    af = socket.AF_INET6 if v6 else socket.AF_INET
    if isinstance(host, (bytes, bytearray)):
        host = bytes(host).decode("idna")
    if not isinstance(host, str):
        msg = f"str, bytes or bytearray expected, not {type(host).__name__}"
        raise TypeError(msg)
    if host == "":
        return bytes(16 if v6 else 4), scope
    if host == "<broadcast>" and not v6:
        return b"\xff\xff\xff\xff", scope
    try:
        return socket.inet_pton(af, host), scope
    except OSError:
        pass
    info: tuple[Any, ...] = socket.getaddrinfo(host, None, af, socket.SOCK_DGRAM)[0][4]
    resolved_scope = int(info[3]) if v6 and not scope else scope
    return socket.inet_pton(af, str(info[0]).split("%", 1)[0]), resolved_scope
