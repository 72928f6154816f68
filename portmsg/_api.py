"""The public API, written once for every backend."""

from __future__ import annotations

import _socket
import errno
import functools
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from . import _args
from ._backend import IMPL
from ._send import MAX_BATCH
from ._types import Control, Enabled, Feature, Message, set_flag_codec

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
    "disable_udp_resets",
    "enable",
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
# Descriptors received with SCM_RIGHTS get FD_CLOEXEC atomically where possible.
_RECV_FLAGS = _C.get("MSG_CMSG_CLOEXEC", 0)
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


# The error queue where the OS has one and portmsg decodes its reports (Linux: Windows'
# headers name MSG_ERRQUEUE and IP_RECVERR too, but document no such queue for UDP).
_ERRQUEUE = _C.get("MSG_ERRQUEUE", 0) if "PM_EXTENDED_ERR_SIZE" in _C else 0


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


def _coalesces(sock: socket.socket) -> bool:
    """Whether the socket has receive coalescing (GRO / URO) on, as the OS says."""
    if _GRO_OPTION is None or _family(sock) == _AF_UNIX:
        return False
    try:
        return bool(sock.getsockopt(*_GRO_OPTION))
    except OSError:
        return False


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
    sock = _datagram_socket(sock)
    max_messages = _args.ssize(max_messages, f"max_messages must be 1-{MAX_BATCH}, not {max_messages}")
    if not 1 <= max_messages <= MAX_BATCH:
        msg = f"max_messages must be 1-{MAX_BATCH}, not {max_messages}"
        raise ValueError(msg)
    if bufsize is None:
        bufsize = _COALESCED_BUFSIZE if _coalesces(sock) else _BATCH_BUFSIZE
    bufsize = _args.ssize(bufsize, "negative buffer size in recv_batch()")
    if ancbufsize is None:
        ancbufsize = _ANCBUFSIZE if _family(sock) == _AF_UNIX else _INET_ANCBUFSIZE
    ancbufsize = _args.ssize(ancbufsize, "invalid ancillary data buffer length")
    return _receive_batch(sock, max_messages, bufsize, ancbufsize, _RECV_FLAGS)


def _ipv4_destination(sock: socket.socket, family: int, name: bytes) -> bool | None:
    """On an AF_INET6 socket: whether the datagram goes to an IPv4-mapped address (None: not AF_INET6)."""
    if family != _AF_INET6:
        return None
    if not name:  # connected: the peer is the destination
        try:
            return IMPL.codec.is_ipv4_mapped(IMPL.codec.encode(family, sock.getpeername(), "send"))
        except OSError:
            return None  # not connected: the send itself will say so
    return IMPL.codec.is_ipv4_mapped(name)


def _prepare(
    sock: socket.socket, family: int, data: Any, address: Any, controls: Iterable[Control]
) -> tuple[Any, bytes, tuple[Any, int]]:
    """One datagram for the send path: (data view, sockaddr bytes, encoded controls); raises before anything is sent."""
    name = b"" if address is None else IMPL.codec.encode(family, address, "send")
    cdata = _args.readable(IMPL.ffi, data)
    ancdata = (
        NORMALIZER.encode(controls, family, ipv4_destination=_ipv4_destination(sock, family, name)) if controls else []
    )
    return cdata, name, IMPL.sender.encode_control(ancdata)


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
    sock = _args.sock_of(sock)
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


# -- enable() -------------------------------------------------------------------

# For each feature: candidate (level, option, delivered type) names per
# option group, tried in order until the OS accepts one.  A candidate is
# offered only where the platform defines it and the normalizer can decode
# what it delivers.
_V4, _V6, _SOCKET_LEVEL, _UNIX, _UDP = "v4", "v6", "socket", "unix", "udp"
_OPTIONS: dict[Feature, dict[str, list[tuple[str, str, str]]]] = {
    Feature.PACKET_INFO: {
        # FreeBSD has no IP_PKTINFO: the destination alone, with IP_RECVDSTADDR.
        _V4: [("IPPROTO_IP", "IP_PKTINFO", "IP_PKTINFO"), ("IPPROTO_IP", "IP_RECVDSTADDR", "IP_RECVDSTADDR")],
        _V6: [("IPPROTO_IPV6", "IPV6_RECVPKTINFO", "IPV6_PKTINFO"), ("IPPROTO_IPV6", "IPV6_PKTINFO", "IPV6_PKTINFO")],
    },
    Feature.TRAFFIC_CLASS: {
        _V4: [("IPPROTO_IP", "IP_RECVTOS", "IP_TOS")],
        _V6: [("IPPROTO_IPV6", "IPV6_RECVTCLASS", "IPV6_TCLASS")],
    },
    Feature.ECN: {
        # The full byte carries the ECN bits too; Windows' IP_RECVECN (ECN bits
        # alone) only where the full byte cannot be had.
        _V4: [("IPPROTO_IP", "IP_RECVTOS", "IP_TOS"), ("IPPROTO_IP", "IP_RECVECN", "IP_ECN")],
        _V6: [("IPPROTO_IPV6", "IPV6_RECVTCLASS", "IPV6_TCLASS"), ("IPPROTO_IPV6", "IPV6_RECVECN", "IPV6_ECN")],
    },
    Feature.HOP_LIMIT: {
        _V4: [("IPPROTO_IP", "IP_RECVTTL", "IP_TTL")],
        _V6: [
            ("IPPROTO_IPV6", "IPV6_RECVHOPLIMIT", "IPV6_HOPLIMIT"),
            ("IPPROTO_IPV6", "IPV6_HOPLIMIT", "IPV6_HOPLIMIT"),
        ],
    },
    Feature.TIMESTAMP: {
        # Linux: SO_TIMESTAMP and SO_TIMESTAMPNS replace each other; set one.  Windows: an
        # ioctl (SIO_TIMESTAMPING), not an option, whose timestamps come as SO_TIMESTAMP.
        _SOCKET_LEVEL: [
            ("SOL_SOCKET", "SO_TIMESTAMPNS", "SCM_TIMESTAMPNS"),
            ("SOL_SOCKET", "SO_TIMESTAMP", "SCM_TIMESTAMP"),
            ("SOL_SOCKET", "SIO_TIMESTAMPING", "SO_TIMESTAMP"),
        ],
    },
    Feature.CREDENTIALS: {
        _UNIX: [("SOL_SOCKET", "SO_PASSCRED", "SCM_CREDENTIALS")],
    },
    Feature.SEGMENT_OFFLOAD: {
        _UDP: [
            ("IPPROTO_UDP", "UDP_GRO", "UDP_GRO"),
            ("IPPROTO_UDP", "UDP_RECV_MAX_COALESCED_SIZE", "UDP_COALESCED_INFO"),
        ],
    },
    Feature.DROPS: {
        # IP datagram sockets only: a Unix datagram sender waits for room instead of being dropped.
        _UDP: [("SOL_SOCKET", "SO_RXQ_OVFL", "SO_RXQ_OVFL")],
    },
    Feature.ORIGINAL_DESTINATION: {
        _V4: [("IPPROTO_IP", "IP_RECVORIGDSTADDR", "IP_ORIGDSTADDR")],
        _V6: [("IPPROTO_IPV6", "IPV6_RECVORIGDSTADDR", "IPV6_ORIGDSTADDR")],
    },
    Feature.ERRORS: {
        _V4: [("IPPROTO_IP", "IP_RECVERR", "IP_RECVERR")],
        _V6: [("IPPROTO_IPV6", "IPV6_RECVERR", "IPV6_RECVERR")],
    },
}
# The value each option is set to (1 unless listed).
_OPTION_VALUES = {"UDP_RECV_MAX_COALESCED_SIZE": 65527}


def _option_groups(sock: socket.socket) -> list[str]:
    """Which option groups of _OPTIONS apply to this socket (none for an IP stream socket)."""
    family, kind = _family(sock), _type(sock)
    if family == _AF_UNIX:
        return [_SOCKET_LEVEL, _UNIX] if kind == socket.SOCK_DGRAM else [_UNIX]
    if kind == _STREAM:
        return []  # TCP: no per-datagram metadata arrives, so none is claimed
    udp = [_UDP] if kind == socket.SOCK_DGRAM else []
    if family == _C["AF_INET"]:
        return [_SOCKET_LEVEL, _V4, *udp]
    if family == _AF_INET6:
        try:
            v6only = sock.getsockopt(_C["IPPROTO_IPV6"], _C["IPV6_V6ONLY"])
        except OSError as exc:
            if not _unsupported(exc):
                raise
            v6only = 1
        # A dual-stack socket gets IPv4 datagrams too: set both families' options.
        return [_SOCKET_LEVEL, _V6, *udp] if v6only else [_SOCKET_LEVEL, _V6, _V4, *udp]
    return []


# The errors that mean "this option is not supported here", on POSIX and as Winsock codes.
_UNSUPPORTED_ERRNO = {errno.ENOPROTOOPT, errno.EINVAL, errno.EOPNOTSUPP, getattr(errno, "ENOTSUP", errno.EOPNOTSUPP)}
_UNSUPPORTED_WINERROR = {10042, 10022, 10045}  # WSAENOPROTOOPT, WSAEINVAL, WSAEOPNOTSUPP


def _unsupported(exc: OSError) -> bool:
    return exc.errno in _UNSUPPORTED_ERRNO or getattr(exc, "winerror", None) in _UNSUPPORTED_WINERROR


def _timestamping(sock: socket.socket) -> None:
    """Windows' receive timestamps: an ioctl rather than an option; OSError as setsockopt raises it."""
    if IMPL.hooks.timestamping is None:
        raise OSError(errno.ENOPROTOOPT, "not an ioctl this backend has")
    code = IMPL.hooks.timestamping(sock.fileno())
    if code:
        raise IMPL.hooks.error(code)


def _switch_on(sock: socket.socket, groups: list[str], feature: Feature) -> str | None:
    """Set every option group's first accepted option; None when on, else why it is off."""
    specs = _OPTIONS[feature]
    wanted = [specs[g] for g in groups if g in specs]
    if not wanted:
        kind = "stream" if _type(sock) == _STREAM else "datagram"
        return f"does not apply to an {IMPL.codec.family_name(_family(sock))} {kind} socket"
    for spec in wanted:  # every group must take (a dual-stack socket needs both families')
        tried = []
        for level, option, delivered in spec:
            absent = next((name for name in (option, level, delivered) if name not in _C), None)
            if absent is not None:
                tried.append(f"{option}: {'' if absent == option else absent + ' '}not in this platform's headers")
                continue
            if (_C[level], _C[delivered]) not in NORMALIZER.decoders:
                tried.append(f"{option}: no decoder for its {delivered} payload here")
                continue
            try:
                if option == "SIO_TIMESTAMPING":
                    _timestamping(sock)
                else:
                    sock.setsockopt(_C[level], _C[option], _OPTION_VALUES.get(option, 1))
            except OSError as exc:
                if not _unsupported(exc):
                    raise  # a closed socket or a real error: the caller must hear it
                tried.append(f"{option}: {exc.strerror or exc}")
                continue
            break
        else:
            return "; ".join(tried)
    return None


# Not by default: what changes what a receive returns or raises.
_BY_DEFAULT = tuple(f for f in Feature if f not in (Feature.SEGMENT_OFFLOAD, Feature.ERRORS))


def enable(sock: socket.socket, *features: Feature) -> Enabled:
    """Switch on per-datagram metadata; return the features now on.

    Sets the right options for the socket's family on this platform (both
    IPv4 and IPv6 ones on a dual-stack socket).  A feature is on only if
    every option it needs was accepted.  A feature the platform or socket
    lacks is left out with no exception; the result's `refused` says why.
    Other errors (a closed socket) raise as the stdlib's setsockopt does.

    With no features given, tries every one but SEGMENT_OFFLOAD and ERRORS:
    coalescing changes what a receive returns (several datagrams in one, split
    them with `Message.segments()`), and ERRORS makes Linux fail the next
    receive on an unconnected socket after an ICMP error, so each is on only
    when asked for by name.

    Platforms:
        Where the full TOS / traffic-class byte cannot be had but its ECN
        bits can (Windows' IP_RECVECN), TRAFFIC_CLASS is left out and ECN is
        reported on instead: `Message.ecn` is then right and the DSCP is not
        known (TrafficClass.dscp reads 0).  Per-datagram metadata does not
        apply to TCP sockets: nothing is claimed there.
    """
    sock = _args.sock_of(sock)
    if sock.fileno() < 0:
        raise IMPL.hooks.error(IMPL.hooks.closed)
    groups = _option_groups(sock)
    on: set[Feature] = set()
    refused: dict[Feature, str] = {}
    for feature in features or _BY_DEFAULT:
        if not isinstance(feature, Feature):
            msg = f"expected a Feature, not {feature!r}"
            raise TypeError(msg)
        why = _switch_on(sock, groups, feature)
        if why is None:
            on.add(feature)
        elif feature is Feature.TRAFFIC_CLASS and _switch_on(sock, groups, Feature.ECN) is None:
            on.add(Feature.ECN)
            refused[feature] = f"{why} (ECN bits alone are on instead)"
        else:
            refused[feature] = why
    return Enabled(on, {f: why for f, why in refused.items() if f not in on})
