"""The synchronous core as the async adapters see it: one narrow seam, written once.

aio.py, trio.py and the engines, transport and endpoint under them reach
portmsg's core only through this module: sockets checked once when an
engine opens (never inside a loop callback), non-blocking batch receives
with no per-call argument checks, queued errors, sends prepared once and
tried without waiting, and the overlapped ops of the Proactor.  Nothing here
waits; each adapter waits its own way (add_reader, an IOCP, trio).
"""

from __future__ import annotations

import _socket
import errno
import socket
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _args
from ._api import recvmsg as _recvmsg
from ._backend import IMPL
from ._send import MAX_BATCH
from ._types import SegmentSize
from ._wait import CLOSE_CHECK

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._iocp import RecvOp, SendOp
    from ._types import Control, Message

__all__ = [
    "CLOSE_CHECK",
    "DEFAULT_BUFSIZE",
    "GSO",
    "PLATFORM",
    "SEND_CONTROLS_REFUSED",
    "Outgoing",
    "async_socket",
    "batch_size",
    "closed_error",
    "controls_refused",
    "gso_refused",
    "is_closed",
    "post_receive",
    "post_send",
    "prepare",
    "queued_error",
    "receive_batch",
    "recvmsg_now",
    "sizes",
    "socket_of",
    "try_send",
    "try_send_many",
]

DEFAULT_BUFSIZE = 65535
"""Bytes per datagram an async receive reads by default: every UDP datagram whole (65,507 bytes over
IPv4, 65,527 over IPv6) and every coalesced (GRO / URO) burst, as asyncio's own transport takes them."""
PLATFORM = IMPL.platform
GSO = "UDP_SEGMENT" in IMPL.constants
"""Whether the OS segments a UDP send (Linux's UDP_SEGMENT)."""
SEND_CONTROLS_REFUSED = IMPL.hooks.send_controls_refused
"""Why this platform cannot send control messages (Wine drops them), or None."""

_C = IMPL.constants
_HOOKS = IMPL.hooks
_AF_UNIX = _C.get("AF_UNIX", -1)
_STREAM = int(socket.SOCK_STREAM)
_UNIX_ANCBUFSIZE = IMPL.cmsg_space(253 * 4) + 256  # SCM_MAX_FD descriptors and credentials
_INET_ANCBUFSIZE = 512  # every IP-level control at once takes under 300 bytes
_RECV_FLAGS = IMPL.recv_flags
_from_buffer = IMPL.ffi.from_buffer
_receive_batch = IMPL.receive_batch
_send_one = IMPL.sender.send_one
_send_packed = IMPL.sender.send_packed
_family = _socket.socket.family.__get__
_type = _socket.socket.type.__get__
# Winsock codes for "this socket is gone" (a completion's error): WSA_OPERATION_ABORTED
# (closesocket cancels), ERROR_NETNAME_DELETED, ERROR_HANDLES_CLOSED (Wine), WSAENOTSOCK.
_CLOSED_WINERRORS = frozenset(
    _C[name]
    for name in ("WSA_OPERATION_ABORTED", "ERROR_NETNAME_DELETED", "ERROR_HANDLES_CLOSED", "WSAENOTSOCK")
    if name in _C
)


socket_of = _args.sock_of
"""The socket.socket behind sock (asyncio's and trio's wrappers taken), or TypeError."""


def async_socket(sock: Any, who: str, *, setblocking: bool = False) -> socket.socket:
    """The socket.socket behind sock, checked once for an async receiver or sender.

    Raises:
        TypeError: not a socket (or asyncio's / trio's wrapper of one), or a TCP socket.
        OSError: the socket is closed (the stdlib's EBADF / WSAENOTSOCK).
        ValueError: a blocking socket (a blocking call would stall the loop), unless
            `setblocking`: then it is made non-blocking, as asyncio does with sock=.

    """
    inner = _args.sock_of(sock)
    if inner.fileno() < 0:
        raise closed_error()
    if _type(inner) == _STREAM and _family(inner) != _AF_UNIX:
        msg = f"{who} takes datagram sockets, not a TCP (SOCK_STREAM) one: a byte stream has no datagrams"
        raise TypeError(msg)
    if setblocking:
        inner.setblocking(False)  # noqa: FBT003
    if inner.gettimeout() != 0:
        msg = f"{who} needs a non-blocking socket: call sock.setblocking(False) first"
        raise ValueError(msg)
    return inner


def sizes(sock: socket.socket, bufsize: int | None, ancbufsize: int | None) -> tuple[int, int]:
    """(bufsize, ancbufsize) for an async receiver: the defaults filled in, values checked."""
    bufsize = DEFAULT_BUFSIZE if bufsize is None else _args.ssize(bufsize, "bufsize must be 0 or more")
    if ancbufsize is None:
        ancbufsize = _UNIX_ANCBUFSIZE if _family(sock) == _AF_UNIX else _INET_ANCBUFSIZE
    return bufsize, _args.ssize(ancbufsize, "ancbufsize must be 0 or more")


def batch_size(max_messages: Any) -> int:
    """max_messages for a batch receive, checked as recv_batch() checks it (1-1024)."""
    count = _args.ssize(max_messages, f"max_messages must be 1-{MAX_BATCH}, not {max_messages}")
    if not 1 <= count <= MAX_BATCH:
        msg = f"max_messages must be 1-{MAX_BATCH}, not {max_messages}"
        raise ValueError(msg)
    return count


def receive_batch(sock: socket.socket, count: int, bufsize: int, ancbufsize: int) -> list[Message]:
    """Up to count queued datagrams in one call, never waiting; BlockingIOError when none is queued."""
    return _receive_batch(sock, count, bufsize, ancbufsize, _RECV_FLAGS)


def recvmsg_now(sock: socket.socket, bufsize: int, ancbufsize: int, flags: int) -> tuple[bytes, list[Any], int, Any]:
    """portmsg.recvmsg() on a non-blocking socket: BlockingIOError when nothing is queued."""
    return _recvmsg(sock, bufsize, ancbufsize, flags)


def queued_error(sock: socket.socket) -> OSError | None:
    """One error the OS queued for the socket (Linux's error queue, ERRORS on) as an OSError; None if none.

    A queued error keeps a poller reporting the socket until it is read: a
    readiness wait that finds nothing to receive takes it here, so that it is
    delivered once instead of waking the loop for ever.
    """
    return IMPL.queued_error(sock)


def closed_error() -> OSError:
    """The error the stdlib raises for a call on a closed socket (EBADF / WSAENOTSOCK)."""
    return _HOOKS.error(_HOOKS.closed)


def is_closed(sock: socket.socket, exc: OSError | None = None) -> bool:
    """Whether sock is gone: closed here, or (exc) a completion cancelled because its socket was closed."""
    return sock.fileno() < 0 or (exc is not None and getattr(exc, "winerror", None) in _CLOSED_WINERRORS)


class Outgoing(NamedTuple):
    """Where a datagram goes and what it carries, encoded once: reused for every datagram sent alike."""

    name: bytes
    """The destination as sockaddr bytes (b"": the connected peer)."""
    control: bytes
    """The native control buffer (b"": none)."""
    segment: int = 0
    """The GSO segment size one send is cut into (0: one datagram)."""


def prepare(sock: socket.socket, address: Any, controls: Iterable[Control] = ()) -> Outgoing:
    """A destination and controls for try_send(); raises (ValueError, TypeError, OSError) before anything is sent."""
    controls = tuple(controls)
    _, name, (control, controllen) = IMPL.sender.prepare(sock, _family(sock), b"", address, controls)
    segment = next((c.value for c in controls if type(c) is SegmentSize), 0)
    return Outgoing(name, bytes(IMPL.ffi.buffer(control, controllen)) if controllen else b"", segment)


def try_send(sock: socket.socket, data: Any, out: Outgoing) -> int:
    """Send one datagram now; BlockingIOError when the socket has no room (nothing was sent)."""
    return _send_one(sock, data, out[0], out[1])


def try_send_many(sock: socket.socket, datas: list[bytes], outs: list[Outgoing]) -> int:
    """Send datagrams in one call (sendmmsg where the OS has it): how many went, in order.

    Raises the first one's error when none went (BlockingIOError: no room).
    """
    return _send_packed(sock, datas, [out[0] for out in outs], [out[1] for out in outs])


def gso_refused(exc: OSError) -> bool:
    """Whether a failed GSO send means this route cannot segment (EIO: no checksum offload; EINVAL ...)."""
    return exc.errno in (errno.EIO, errno.EINVAL, errno.EOPNOTSUPP, errno.EMSGSIZE)


def controls_refused(exc: OSError) -> bool:
    """Whether a send failed because the platform cannot send control messages (Wine: EOPNOTSUPP)."""
    return exc.errno == errno.EOPNOTSUPP


def post_receive(sock: socket.socket, bufsize: int, ancbufsize: int) -> RecvOp:
    """A new overlapped receive op for sock (Windows), not yet started."""
    from ._iocp import RecvOp  # noqa: PLC0415 - Windows only

    return RecvOp(IMPL, sock, bufsize, ancbufsize)


def post_send(sock: socket.socket, data: Any, out: Outgoing) -> SendOp:
    """An overlapped send of one datagram (Windows), started: its completion says what went."""
    from ._iocp import SendOp  # noqa: PLC0415 - Windows only

    op = SendOp(IMPL, sock)
    op.start(_args.readable(IMPL.ffi, data), out.name, out.control)
    return op
