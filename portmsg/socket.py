"""The stdlib's socket module, with recvmsg, recvmsg_into, sendmsg, CMSG_LEN and CMSG_SPACE everywhere.

A program written for Linux's `sock.recvmsg()` runs on Windows by changing
its import:

    from portmsg import socket      # was: import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_PKTINFO, 1)
    data, ancdata, flags, address = sock.recvmsg(1500, socket.CMSG_SPACE(64))

Everything the stdlib's module has is here unchanged; `socket` (and what
`socketpair()`, `fromfd()` and `accept()` return) is a subclass of the
stdlib's whose `recvmsg`, `recvmsg_into` and `sendmsg` are portmsg's Level 1
on every platform, Linux included (the same arguments, checks, exceptions
and results as the stdlib's there: CPython's own test_socket runs against
them).  The constants the stdlib's module lacks (IP_PKTINFO on Windows,
IP_RECVTTL, UDP_GRO ...) come from this platform's headers, as in
`portmsg.native`; a name the platform lacks is absent.
"""

from __future__ import annotations

import socket as _stdlib
from socket import *  # noqa: F403 - this module is the stdlib's, plus what it lacks
from typing import TYPE_CHECKING, Any

from . import _api, native

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [*_stdlib.__all__, "CMSG_LEN", "CMSG_SPACE", "PortableSocket"]  # noqa: PLE0604 - the stdlib's names, then ours

CMSG_LEN = _api.CMSG_LEN
CMSG_SPACE = _api.CMSG_SPACE

_PREFIXES = ("IP_", "IPV6_", "MSG_", "SO_", "SCM_", "UDP_", "IPPROTO_", "SOL_")
for _name, _value in native.CONSTANTS.items():
    if _name.startswith(_PREFIXES) and not hasattr(_stdlib, _name):
        globals()[_name] = _value
        __all__ += [_name]  # noqa: PLE0604
del _name, _value


class PortableSocket(_stdlib.socket):
    """The stdlib's socket, with portmsg's recvmsg / recvmsg_into / sendmsg on every platform.

    This module's `socket` is this class.  Static type checkers see the
    stdlib's `socket` under that name (on win32 its stubs have no recvmsg):
    annotate and construct with `PortableSocket` where that matters.
    """

    __slots__ = ()

    def recvmsg(self, bufsize: int, ancbufsize: int = 0, flags: int = 0, /) -> tuple[bytes, list[Any], int, Any]:
        """As the stdlib's socket.recvmsg (see portmsg.recvmsg)."""
        return _api.recvmsg(self, bufsize, ancbufsize, flags)

    def recvmsg_into(
        self, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0, /
    ) -> tuple[int, list[Any], int, Any]:
        """As the stdlib's socket.recvmsg_into (see portmsg.recvmsg_into)."""
        return _api.recvmsg_into(self, buffers, ancbufsize, flags)

    def sendmsg(
        self, buffers: Iterable[Any], ancdata: Iterable[Any] = (), flags: int = 0, address: Any = None, /
    ) -> int:
        """As the stdlib's socket.sendmsg (see portmsg.sendmsg)."""
        return _api.sendmsg(self, buffers, ancdata, flags, address)

    def accept(self) -> tuple[PortableSocket, Any]:
        """Accept a connection as the stdlib does; the new socket is of this class."""
        fd, address = self._accept()  # type: ignore[attr-defined]
        sock = PortableSocket(self.family, self.type, self.proto, fileno=fd)
        if _stdlib.getdefaulttimeout() is None and self.gettimeout():
            sock.setblocking(True)  # noqa: FBT003
        return sock, address


socket = PortableSocket  # type: ignore[misc]  # the stdlib's name, in its place


def socketpair(  # type: ignore[no-redef]
    family: int | None = None,
    type: int = SOCK_STREAM,  # noqa: A002, F405 - the stdlib's names
    proto: int = 0,
) -> tuple[PortableSocket, PortableSocket]:
    """Make a connected pair as the stdlib does, of this module's socket class."""
    # None means the platform's default (AF_UNIX on POSIX, AF_INET on Windows, which refuses None itself).
    a, b = _stdlib.socketpair(type=type, proto=proto) if family is None else _stdlib.socketpair(family, type, proto)
    return (
        PortableSocket(a.family, a.type, a.proto, a.detach()),
        PortableSocket(b.family, b.type, b.proto, b.detach()),
    )


def fromfd(fd: int, family: int, type: int, proto: int = 0) -> PortableSocket:  # type: ignore[no-redef]  # noqa: A002
    """Duplicate a descriptor into this module's socket class, as the stdlib's function does."""
    return PortableSocket(family, type, proto, _stdlib.dup(fd))
