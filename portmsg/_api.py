"""The public API, written once for every backend."""

from __future__ import annotations

import _socket
import functools
import socket
import struct
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from . import _args
from ._backend import IMPL
from ._send import MAX_BATCH
from ._types import Control, Message, set_flag_codec

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._glue import Level1Result, RecvIntoResult
    from ._report import NativeControl

__all__ = [
    "BACKEND",
    "CMSG_LEN",
    "CMSG_SPACE",
    "NORMALIZER",
    "PLATFORM",
    "Receiver",
    "disable_udp_resets",
    "dropped",
    "encode",
    "normalize",
    "recv",
    "recv_batch",
    "recv_into",
    "recvmsg",
    "recvmsg_into",
    "send",
    "send_batch",
    "sendmsg",
]

BACKEND: str = IMPL.name
"""The backend in use: "posix" or "winsock"."""
PLATFORM: str = IMPL.platform
"""Where portmsg runs: sys.platform on POSIX, "windows MAJOR.BUILD" or "wine VERSION"."""

NORMALIZER = IMPL.normalizer
set_flag_codec(NORMALIZER)  # MsgFlag.from_native / to_native: this platform's bits

_C = IMPL.constants
_PEEK = _C["MSG_PEEK"]
_RECV_FLAGS = IMPL.recv_flags
_SSIZE_MAX = sys.maxsize
_AF_UNIX = _C.get("AF_UNIX", -1)
_AF_INET6 = _C["AF_INET6"]
_INT_MIN, _INT_MAX = _args.INT_MIN, _args.INT_MAX
# Room for every control one datagram can carry: SCM_MAX_FD (253) descriptors
# and credentials on a Unix socket; every IP-level control at once takes under 300 bytes.
_ANCBUFSIZE = IMPL.cmsg_space(253 * 4) + 256
_INET_ANCBUFSIZE = 512
_BATCH_BUFSIZE = 2048  # a datagram a batch takes whole by default (an Ethernet MTU and more)
_COALESCED_BUFSIZE = 65535  # the most one coalesced (GRO / URO) datagram carries
_GRO_OPTION = next(
    ((_C["IPPROTO_UDP"], _C[name]) for name in ("UDP_GRO", "UDP_RECV_MAX_COALESCED_SIZE") if name in _C), None
)
# Bound once: module globals are the cheapest names on the hot path.
_receive = IMPL.receiver(level1=False)
_recv_into = IMPL.receiver(level1=False, into=True)
_recvmsg_into = IMPL.receiver(level1=True, into=True)
_NULL = IMPL.ffi.NULL
_receive_batch = IMPL.receive_batch
_SOCKET = socket.socket
# socket.socket.family / .type are Python properties that build an IntEnum
# (~0.7 us); the C-level getters underneath return the int.
_family = _socket.socket.family.__get__
_type = _socket.socket.type.__get__
_STREAM = int(socket.SOCK_STREAM)
_from_buffer = IMPL.ffi.from_buffer
_prepare = IMPL.sender.prepare
_CHARS = IMPL.ffi.typeof("char[]")
F = TypeVar("F", bound=Callable[..., Any])


# -- Level 1: the stdlib's shapes and native numbers --------------------------------


def _flat(impl: Callable[..., Any]) -> Callable[[F], F]:
    """Use impl (a flat receive from the backend) under the decorated function's name, signature and docs.

    The decorated function only declares the interface; the call goes straight
    to impl, one Python frame, not two.
    """

    def declare(spec: F) -> F:
        functools.update_wrapper(impl, spec)
        # Arity errors name the function as its code object says (3.11+: co_qualname).
        if sys.version_info >= (3, 11):
            impl.__code__ = impl.__code__.replace(co_name=spec.__name__, co_qualname=spec.__qualname__)
        else:
            impl.__code__ = impl.__code__.replace(co_name=spec.__name__)
        return impl  # type: ignore[return-value]

    return declare


@_flat(IMPL.receiver(level1=True))
def recvmsg(sock: socket.socket, bufsize: int, ancbufsize: int = 0, flags: int = 0, /) -> Level1Result:
    """Receive like `sock.recvmsg(bufsize[, ancbufsize[, flags]])`, on every platform.

    Returns:
        (data, ancdata, msg_flags, address), with native level / type / flag
        numbers (see `portmsg.native`), exactly as the stdlib returns them.

    Raises:
        OSError: as the stdlib raises it (BlockingIOError, TimeoutError, ...).

    Platforms:
        Windows takes only MSG_PEEK as input (others: ValueError).  A datagram
        larger than bufsize sets the native MSG_TRUNC bit everywhere: Windows
        reports it as the error WSAEMSGSIZE, which portmsg turns into the flag.
        Flags the kernel rejects raise at once, where the stdlib on a socket
        with a timeout first waits for a datagram.

    """
    raise NotImplementedError  # never runs: @_flat puts the backend's flat receive here


def recvmsg_into(sock: socket.socket, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0, /) -> RecvIntoResult:
    """Receive like `sock.recvmsg_into(buffers[, ancbufsize[, flags]])`: scatter into writable buffers.

    Returns:
        (nbytes, ancdata, msg_flags, address), as the stdlib returns them.

    Platforms:
        As `recvmsg`.

    """
    sock = _args.sock_of(sock)
    ancbufsize, flags = _args.ssize(ancbufsize), _args.c_int(flags)
    items = _args.listed(buffers, "recvmsg_into() argument 1 must be an iterable")
    cbufs = _args.writable(
        IMPL.ffi, items, "recvmsg_into() argument 1 must be an iterable of single-segment read-write buffers"
    )
    if ancbufsize < 0:
        msg = "invalid ancillary data buffer length"
        raise ValueError(msg)
    nbytes, (_, ancdata, msg_flags, address) = _recvmsg_into(sock, IMPL.buffers(cbufs), ancbufsize, flags)
    return nbytes, ancdata, msg_flags, address


def sendmsg(
    sock: socket.socket, buffers: Iterable[Any], ancdata: Iterable[Any] = (), flags: int = 0, address: Any = None, /
) -> int:
    """Send like `sock.sendmsg(buffers[, ancdata[, flags[, address]]])`: gather buffers, attach native controls.

    Returns:
        The number of bytes sent.

    Platforms:
        Under Wine, which accepts control messages on WSASendMsg and drops
        them, a send with ancdata raises OSError(EOPNOTSUPP) and sends nothing.

    """
    return IMPL.sender.sendmsg(sock, buffers, ancdata, flags, address)


def CMSG_LEN(length: int, /) -> int:  # noqa: N802 - the C name, as in the socket module
    """The native CMSG_LEN (WSA_CMSG_LEN on Windows): header plus `length` bytes of data, unpadded."""
    return IMPL.cmsg_len(length)


def CMSG_SPACE(length: int, /) -> int:  # noqa: N802 - the C name, as in the socket module
    """The native CMSG_SPACE (WSA_CMSG_SPACE on Windows): room one control message of `length` bytes takes."""
    return IMPL.cmsg_space(length)


# -- Level 2: the same values on every platform --------------------------------------


def normalize(ancdata: Iterable[NativeControl]) -> tuple[Control, ...]:
    """Decode native (level, type, data) tuples (from recvmsg, or the stdlib's) into control objects."""
    return NORMALIZER.normalize(ancdata)


def encode(controls: Iterable[Control], family: int | None = None) -> list[NativeControl]:
    """Encode control objects as native (level, type, data) tuples for sendmsg.

    `family` (AF_INET or AF_INET6) picks the form of the controls whose IPv4
    and IPv6 forms differ; `normalize(encode(controls, family))` gives the
    controls back as a tuple.
    """
    return NORMALIZER.encode(controls, family)


def _datagram_socket(sock: Any) -> socket.socket:
    """The socket behind sock, refusing IP stream sockets (the slow path of the Level-2 receives)."""
    inner = _args.sock_of(sock)
    if _type(inner) == _STREAM and _family(inner) != _AF_UNIX:
        msg = (
            "portmsg.recv, recv_into and recv_batch take datagram sockets, not a TCP (SOCK_STREAM) one: "
            "a byte stream has no datagrams to report on; use portmsg.recvmsg or sock.recv"
        )
        raise TypeError(msg)
    return inner


def recv(sock: socket.socket, bufsize: int = 65535, *, peek: bool = False, ancbufsize: int | None = None) -> Message:
    """Receive one datagram with every control message decoded.

    Args:
        sock: a datagram socket (or asyncio's / trio's wrapper of one); its
            timeout or blocking mode applies.
        bufsize: the most bytes of data to return; a longer datagram is cut
            and `Message.truncated` is set.
        peek: leave the datagram queued (MSG_PEEK).
        ancbufsize: control buffer size; None leaves room for every control
            a datagram can carry.

    Raises:
        OSError: as the stdlib's socket methods raise it (BlockingIOError,
            TimeoutError, ...).
        TypeError: not a datagram socket.

    """
    if ancbufsize is None:
        # One default for every family: the kernel copies only what arrived,
        # and asking sock.family costs more than the room.
        ancbufsize = _ANCBUFSIZE
    if type(sock) is not _SOCKET or _type(sock) == _STREAM:
        sock = _datagram_socket(sock)
    return _receive(sock, bufsize, ancbufsize, _RECV_FLAGS | _PEEK if peek else _RECV_FLAGS)  # type: ignore[no-any-return]


def recv_into(
    sock: socket.socket, buffer: Any, *, peek: bool = False, ancbufsize: int | None = None
) -> tuple[int, Message]:
    """Receive one datagram into a writable buffer you own (no bytes object per datagram).

    Returns:
        (nbytes, message): the payload is buffer[:nbytes] (cut to the buffer's
        size if `message.truncated`); the Message carries the metadata and its
        `data` is empty.  Reuse one buffer, or a pool of them, across calls.

    """
    if type(sock) is not _SOCKET or _type(sock) == _STREAM:
        sock = _datagram_socket(sock)
    ancbufsize = _ANCBUFSIZE if ancbufsize is None else _args.ssize(ancbufsize, "invalid ancillary data buffer length")
    try:
        # require_writable, by position and with the type ready: half the cost of the keyword form
        cbuf = _from_buffer(_CHARS, buffer, True)  # noqa: FBT003
    except (TypeError, BufferError):
        msg = f"buffer must be a writable bytes-like object, not {type(buffer).__name__}"
        raise TypeError(msg) from None
    return _recv_into(sock, (cbuf, len(cbuf), _NULL, 0), ancbufsize, _RECV_FLAGS | _PEEK if peek else _RECV_FLAGS)  # type: ignore[no-any-return]


_ERRQUEUE = IMPL.errqueue


def recv_error(sock: socket.socket, bufsize: int = 2048, *, ancbufsize: int | None = None) -> Message | None:
    """Take one error the OS queued for the socket, with the datagram that caused it; None if none is queued.

    Never blocks.  The Message's `data` is the datagram that caused the error
    (as much of it as the OS kept), its `address` where that datagram was
    sent, `error` the QueuedError, and `flags` include MsgFlag.ERRQUEUE.
    Enable Feature.ERRORS first; without it the queue stays empty.

    Platforms:
        Linux (MSG_ERRQUEUE, IP_RECVERR / IPV6_RECVERR).  Elsewhere it raises
        NotImplementedError: Windows reports ICMP errors only as the next
        receive's WSAECONNRESET / WSAENETRESET (see `disable_udp_resets`), and
        the BSDs and macOS as ECONNREFUSED on connected sockets.
    """
    if not _ERRQUEUE:
        msg = (
            f"{PLATFORM} has no socket error queue (MSG_ERRQUEUE is Linux's): errors arrive as the next "
            "receive's exception there"
        )
        raise NotImplementedError(msg)
    sock = _datagram_socket(sock)
    ancbufsize = _ANCBUFSIZE if ancbufsize is None else ancbufsize
    try:
        return _receive(sock, bufsize, ancbufsize, _RECV_FLAGS | _ERRQUEUE)  # type: ignore[no-any-return]
    except BlockingIOError:
        return None


_MEMINFO = (
    (_C["SOL_SOCKET"], _C["SO_MEMINFO"], _C["PM_SK_MEMINFO_DROPS"], _C["PM_SK_MEMINFO_VARS"])
    if all(name in _C for name in ("SO_MEMINFO", "PM_SK_MEMINFO_DROPS", "PM_SK_MEMINFO_VARS"))
    else None
)


def dropped(sock: socket.socket) -> int:
    """How many datagrams the socket has dropped so far (a full receive buffer), counted now.

    `Message.drops` (Feature.DROPS) is the count as of when that datagram was
    queued: after a burst overflows, every datagram still queued reads the
    count from before it.  This reads the socket's own counter at the call,
    so a monitor sees the loss when it happens.  Nothing needs enabling.

    Platforms:
        Linux (SO_MEMINFO's SK_MEMINFO_DROPS: the same counter as
        SO_RXQ_OVFL's).  Elsewhere NotImplementedError: Windows and the
        BSDs report no per-socket drop count.
    """
    if _MEMINFO is None:
        msg = f"{PLATFORM} reports no per-socket drop count (SO_MEMINFO is Linux's)"
        raise NotImplementedError(msg)
    sock = _args.sock_of(sock)
    level, option, index, count = _MEMINFO
    raw = sock.getsockopt(level, option, 4 * count)
    return int(struct.unpack_from(f"={count}I", raw)[index])


def _coalesces(sock: socket.socket) -> bool:
    """Whether the socket has receive coalescing (GRO / URO) on, as the OS says."""
    if _GRO_OPTION is None or _family(sock) == _AF_UNIX:
        return False
    try:
        return bool(sock.getsockopt(*_GRO_OPTION))
    except OSError:
        return False


class Receiver:
    """One datagram socket's fastest receive: its sizes checked once, its buffers and the socket preset in C.

    `recv()` returns what `portmsg.recv(sock, bufsize, ancbufsize=ancbufsize)` returns, and
    `recv_batch()` what `portmsg.recv_batch(sock, batch, bufsize, ancbufsize=ancbufsize)` does,
    without checking the arguments again on every call.

    With `buffer` (a writable bytes-like object), `recv_into()` receives into it; the buffer stays
    exported while the Receiver lives (a bytearray cannot change size meanwhile).

    Threads: `recv()` and `recv_into()` belong to the thread that made the Receiver (its buffers
    are its own): called from another thread, or from a signal handler inside one of them, they
    raise RuntimeError; make one Receiver per thread.  `recv_batch()` may be called from any thread.

    Platforms: POSIX, given a socket.socket: the one-argument C path.  Windows, or a wrapped
    socket: the shared receive with these sizes, under the same thread rule.
    """

    __slots__ = ("_recv_into", "ancbufsize", "batch", "bufsize", "recv", "sock")

    recv: Callable[[], Message]

    def __init__(
        self,
        sock: socket.socket,
        *,
        bufsize: int = 65535,
        ancbufsize: int | None = None,
        batch: int = 32,
        buffer: Any = None,
    ) -> None:
        self.sock = _datagram_socket(sock)
        self.bufsize = _args.ssize(bufsize, "negative buffer size in Receiver()")
        self.ancbufsize = (
            _ANCBUFSIZE if ancbufsize is None else _args.ssize(ancbufsize, "invalid ancillary data buffer length")
        )
        self.batch = _args.ssize(batch)
        if not 1 <= self.batch <= MAX_BATCH:
            msg = f"batch must be 1-{MAX_BATCH}, not {batch}"
            raise ValueError(msg)
        self.recv = IMPL.bound_receive(self.sock, self.bufsize, self.ancbufsize)
        self._recv_into: Callable[[], tuple[int, Message]] | None = None
        if buffer is not None:
            try:
                cbuf = _from_buffer(_CHARS, buffer, True)  # noqa: FBT003 - require_writable, by position
            except (TypeError, BufferError):
                msg = f"buffer must be a writable bytes-like object, not {type(buffer).__name__}"
                raise TypeError(msg) from None
            self._recv_into = IMPL.bound_receive(self.sock, len(cbuf), self.ancbufsize, cbuf)

    def recv_into(self) -> tuple[int, Message]:
        """One datagram into the buffer given at construction: (nbytes, Message with empty data), as `recv_into`.

        The payload is buffer[:nbytes] (cut to the buffer's size if `message.truncated`).  While
        the datagrams repeat their sender, controls and flags, the same Message object is returned.
        """
        if self._recv_into is None:
            msg = "this Receiver has no buffer: make it with Receiver(sock, buffer=...)"
            raise ValueError(msg)
        return self._recv_into()

    def recv_batch(self) -> list[Message]:
        """Up to `batch` datagrams in one call, blocking (per the socket's timeout) for the first only."""
        return _receive_batch(self.sock, self.batch, self.bufsize, self.ancbufsize, _RECV_FLAGS)

    def __repr__(self) -> str:
        return (
            f"<portmsg.Receiver {self.sock!r} bufsize={self.bufsize} ancbufsize={self.ancbufsize} batch={self.batch}>"
        )


def recv_batch(
    sock: socket.socket, max_messages: int = 32, bufsize: int | None = None, *, ancbufsize: int | None = None
) -> list[Message]:
    """Receive up to max_messages datagrams in one call.

    Blocks (per the socket's timeout) for the first datagram only and returns
    what is queued after it, at least one.  bufsize=None is 2048 bytes per
    datagram, or 65535 where the socket coalesces (SEGMENT_OFFLOAD on), so
    that no default cuts a coalesced burst.

    Platforms:
        Linux: one recvmmsg(2) call (MSG_WAITFORONE).  Windows: WSARecvMsg
        calls while FIONREAD reports more queued.  Other POSIX: recvmsg calls
        with MSG_DONTWAIT after the first.
    """
    # Plain ints in range go straight through: the checks below cost more than a batch's C call.
    if type(sock) is not _SOCKET or _type(sock) == _STREAM:
        sock = _datagram_socket(sock)
    if type(max_messages) is not int or not 1 <= max_messages <= MAX_BATCH:
        max_messages = _args.ssize(max_messages, f"max_messages must be 1-{MAX_BATCH}, not {max_messages}")
        if not 1 <= max_messages <= MAX_BATCH:
            msg = f"max_messages must be 1-{MAX_BATCH}, not {max_messages}"
            raise ValueError(msg)
    if bufsize is None:
        bufsize = _COALESCED_BUFSIZE if _coalesces(sock) else _BATCH_BUFSIZE
    elif type(bufsize) is not int or not 0 <= bufsize <= _SSIZE_MAX:
        bufsize = _args.ssize(bufsize, "negative buffer size in recv_batch()")
    if ancbufsize is None:
        ancbufsize = _ANCBUFSIZE if _family(sock) == _AF_UNIX else _INET_ANCBUFSIZE
    elif type(ancbufsize) is not int or not 0 <= ancbufsize <= _SSIZE_MAX:
        ancbufsize = _args.ssize(ancbufsize, "invalid ancillary data buffer length")
    return _receive_batch(sock, max_messages, bufsize, ancbufsize, _RECV_FLAGS)


def send_batch(sock: socket.socket, datagrams: Iterable[tuple[Any, ...]]) -> int:
    """Send several datagrams in one call; return how many the OS took.

    Args:
        sock: a socket.socket; its timeout or blocking mode applies.
        datagrams: (data, address) or (data, address, controls) tuples;
            address None on a connected socket.

    Returns:
        The number sent, counted from the first: a partial send (a full
        non-blocking buffer) is reported, never hidden; send the rest again.

    Raises:
        ValueError / TypeError: a bad datagram or control (nothing is sent).

    Platforms:
        Linux: one sendmmsg(2) call.  Elsewhere one send per datagram,
        stopping at the first that fails.

    """
    sock = _args.sock_of(sock)
    family = _family(sock)
    prepared = []
    for item in datagrams:
        if not isinstance(item, tuple) or len(item) not in (2, 3):
            msg = f"datagrams: each must be (data, address) or (data, address, controls), not {item!r:.60}"
            raise TypeError(msg)
        prepared.append(_prepare(sock, family, item[0], item[1], item[2] if len(item) == 3 else ()))  # noqa: PLR2004
    return IMPL.sender.send_batch(sock, prepared)


def send(sock: socket.socket, data: Any, address: Any = None, *, controls: Iterable[Control] = ()) -> int:
    """Send one datagram with control objects attached; return the bytes sent.

    Each control takes the form that works for the socket and the
    destination (on a dual-stack socket, an IPv4 peer gets IP_TOS / IP_TTL).

    Raises:
        ValueError: a control that cannot take effect here (nothing is sent):
            one this platform lacks, an IPv6 source on an IPv4 socket or to an
            IPv4 peer (and the reverse), descriptors or credentials on an IP
            socket, IP controls on an AF_UNIX socket.

    """
    if type(sock) is not _SOCKET:
        sock = _args.sock_of(sock)
    if not controls:  # nothing to attach: the stdlib's own call does exactly this
        return sock.sendto(data, address) if address is not None else sock.send(data)
    cdata, name, control = _prepare(sock, _family(sock), data, address, controls)
    return IMPL.sender.send_encoded(sock, [cdata], control, name, 0)


def disable_udp_resets(sock: socket.socket) -> frozenset[str]:
    """Stop ICMP errors from failing later receives on an unconnected UDP socket.

    Returns:
        The options that were turned off: {"SIO_UDP_CONNRESET", "SIO_UDP_NETRESET"}
        on Windows, fewer where the provider refuses one (Wine has no
        SIO_UDP_NETRESET); an empty set on POSIX, which has nothing to turn
        off.

    Platforms:
        Windows, by default and like its stdlib, fails the next receive with
        ConnectionResetError (WSAECONNRESET) after an ICMP port unreachable,
        and with WSAENETRESET after a TTL expiry, even on unconnected sockets.
        POSIX reports ICMP errors only on connected sockets (ECONNREFUSED).

    """
    return IMPL.disable_udp_resets(sock)
