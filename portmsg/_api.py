"""The public API, written once for every backend."""

from __future__ import annotations

import _socket
import socket
from typing import TYPE_CHECKING, Any

from ._backend import IMPL
from ._glue import MAX_BATCH
from ._normalize import Normalizer
from ._types import Control, Feature, Message

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._glue import NativeControl, RecvResult

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

NORMALIZER = Normalizer(IMPL.constants)
_C = IMPL.constants
_PEEK = _C["MSG_PEEK"]
# Descriptors received with SCM_RIGHTS get FD_CLOEXEC atomically where possible.
_RECV_FLAGS = _C.get("MSG_CMSG_CLOEXEC", 0)
_PEEK_FLAGS = (_RECV_FLAGS, _RECV_FLAGS | _PEEK)
_AF_UNIX = _C.get("AF_UNIX", -1)
# Room for every control one datagram can carry.
_UNIX_ANCBUFSIZE = IMPL.cmsg_space(253 * 4) + 256  # SCM_MAX_FD descriptors, credentials
_INET_ANCBUFSIZE = 512  # every IP-level control at once takes under 300 bytes
_decode = NORMALIZER.message
_receive = IMPL.receive
# socket.socket.family is a Python property that builds an IntEnum (~0.7 us);
# the C-level getter underneath returns the int.
_family = _socket.socket.family.__get__


# -- Level 1: the stdlib's shapes and native numbers --------------------------------


recvmsg = IMPL.recvmsg
"""Receive like `socket.socket.recvmsg(bufsize, ancbufsize=0, flags=0)`, on every platform.

recvmsg(sock, bufsize, ancbufsize=0, flags=0) -> (data, ancdata, msg_flags, address),
with native level/type/flag numbers.

Platforms:
    Windows takes only MSG_PEEK as input.  A datagram larger than bufsize
    sets the native MSG_TRUNC bit on every platform (Windows reports it as
    the error WSAEMSGSIZE, which portmsg turns into the flag).
"""


def recvmsg_into(sock: socket.socket, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0) -> RecvResult:
    """Receive like `socket.socket.recvmsg_into`: scatter into writable buffers.

    Returns:
        (nbytes, ancdata, msg_flags, address).

    """
    return IMPL.recvmsg_into(sock, buffers, ancbufsize, flags)


def sendmsg(
    sock: socket.socket, buffers: Iterable[Any], ancdata: Iterable[Any] = (), flags: int = 0, address: Any = None
) -> int:
    """Send like `socket.socket.sendmsg`: gather buffers, attach native control data.

    Returns:
        The number of bytes sent.

    """
    return IMPL.sendmsg(sock, buffers, ancdata, flags, address)


def CMSG_LEN(length: int) -> int:  # noqa: N802 - the C name, as in the socket module
    """The native CMSG_LEN: header plus `length` bytes of data, unpadded."""
    return IMPL.cmsg_len(length)


def CMSG_SPACE(length: int) -> int:  # noqa: N802 - the C name, as in the socket module
    """The native CMSG_SPACE: room one control message of `length` bytes takes."""
    return IMPL.cmsg_space(length)


# -- Level 2: the same values on every platform --------------------------------------


def normalize(ancdata: Iterable[NativeControl]) -> tuple[Control, ...]:
    """Decode native (level, type, data) tuples (from recvmsg) into control objects."""
    return NORMALIZER.normalize(ancdata)


def encode(controls: Iterable[Control], family: int | None = None) -> list[NativeControl]:
    """Encode control objects as native (level, type, data) tuples for sendmsg."""
    return NORMALIZER.encode(controls, family)


def recv(sock: socket.socket, bufsize: int = 65535, *, peek: bool = False, ancbufsize: int | None = None) -> Message:
    """Receive one datagram with every control message decoded.

    Args:
        sock: a socket.socket; its timeout or blocking mode applies.
        bufsize: the most bytes of data to return; a longer datagram is cut
            and `Message.truncated` is set.
        peek: leave the datagram queued (MSG_PEEK).
        ancbufsize: control buffer size; None leaves room for every control
            a datagram can carry.

    Raises:
        OSError: as the stdlib's socket methods raise it (BlockingIOError,
            TimeoutError, ...).

    """
    # One default for every family (room for SCM_MAX_FD descriptors): the
    # kernel copies only what arrived, and asking sock.family costs more.
    if ancbufsize is None:
        ancbufsize = _UNIX_ANCBUFSIZE
    elif ancbufsize < 0:
        msg = "invalid ancillary data buffer length"
        raise ValueError(msg)
    if bufsize < 0:
        msg = "negative buffer size in recv()"
        raise ValueError(msg)
    return _receive(sock, bufsize, ancbufsize, _PEEK_FLAGS[peek], _decode)


def recv_into(
    sock: socket.socket, buffer: Any, *, peek: bool = False, ancbufsize: int | None = None
) -> tuple[int, Message]:
    """Receive one datagram into a writable buffer you own (no bytes object per datagram).

    Returns:
        (nbytes, message): the payload is buffer[:nbytes] (cut to the buffer's
        size if `message.truncated`); the Message carries the metadata and its
        `data` is empty.  Reuse one buffer, or a pool of them, across calls.

    """
    if not isinstance(sock, socket.socket):
        msg = f"expected a socket.socket, not {type(sock).__name__}"
        raise TypeError(msg)
    cbufs = IMPL.writable([buffer], f"buffer must be a writable bytes-like object, not {type(buffer).__name__}")
    if ancbufsize is None:
        ancbufsize = _UNIX_ANCBUFSIZE  # one default for every family, as in recv()
    elif ancbufsize < 0:
        msg = "invalid ancillary data buffer length"
        raise ValueError(msg)
    return IMPL.receive_into(sock, cbufs, ancbufsize, _PEEK_FLAGS[peek], _decode)


def recv_batch(
    sock: socket.socket, max_messages: int = 32, bufsize: int = 2048, *, ancbufsize: int | None = None
) -> list[Message]:
    """Receive up to max_messages datagrams in one call.

    Blocks (per the socket's timeout) for the first datagram only and returns
    what is queued after it, at least one.

    Platforms:
        Linux: one recvmmsg(2) call (MSG_WAITFORONE).  Windows: WSARecvMsg
        calls while FIONREAD reports more queued.  Other POSIX: recvmsg calls
        with MSG_DONTWAIT after the first.
    """
    if not 1 <= max_messages <= MAX_BATCH:
        msg = f"max_messages must be 1-{MAX_BATCH}, not {max_messages}"
        raise ValueError(msg)
    if bufsize < 0:
        msg = "negative buffer size in recv_batch()"
        raise ValueError(msg)
    if not isinstance(sock, socket.socket):
        msg = f"expected a socket.socket, not {type(sock).__name__}"
        raise TypeError(msg)
    if ancbufsize is None:
        ancbufsize = _UNIX_ANCBUFSIZE if _family(sock) == _AF_UNIX else _INET_ANCBUFSIZE
    return IMPL.receive_batch(sock, max_messages, bufsize, ancbufsize, _RECV_FLAGS, _decode)


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
    family = _family(sock) if isinstance(sock, socket.socket) else None
    prepared = []
    for item in datagrams:
        if not isinstance(item, tuple) or len(item) not in (2, 3):
            msg = f"datagrams: each must be (data, address) or (data, address, controls), not {item!r:.60}"
            raise TypeError(msg)
        controls = item[2] if len(item) == 3 else ()  # noqa: PLR2004
        prepared.append((item[0], item[1], NORMALIZER.encode(controls, family) if controls else []))
    return IMPL.sendmsg_batch(sock, prepared)


def send(sock: socket.socket, data: Any, address: Any = None, *, controls: Iterable[Control] = ()) -> int:
    """Send one datagram with control objects attached; return the bytes sent.

    Raises:
        ValueError: a control this platform cannot send (nothing is sent).

    """
    ancdata = NORMALIZER.encode(controls, _family(sock)) if controls else []
    return IMPL.sendmsg(sock, [data], ancdata, 0, address)


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
# address family, tried in order until the OS accepts one.  A candidate is
# offered only where the platform defines it and the normalizer can decode
# what it delivers.
_V4, _V6, _SOCKET, _UNIX, _UDP = "v4", "v6", "socket", "unix", "udp"
_OPTIONS: dict[Feature, dict[str, list[tuple[str, str, str]]]] = {
    Feature.PACKET_INFO: {
        _V4: [("IPPROTO_IP", "IP_PKTINFO", "IP_PKTINFO")],
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
        # Linux: SO_TIMESTAMP and SO_TIMESTAMPNS replace each other; set one.
        _SOCKET: [("SOL_SOCKET", "SO_TIMESTAMPNS", "SCM_TIMESTAMPNS"), ("SOL_SOCKET", "SO_TIMESTAMP", "SCM_TIMESTAMP")],
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
}
# The value each option is set to (1 unless listed).
_OPTION_VALUES = {"UDP_RECV_MAX_COALESCED_SIZE": 65527}


def _families(sock: socket.socket) -> list[str]:
    family = int(sock.family)
    if family == _C.get("AF_UNIX"):
        return [_SOCKET, _UNIX] if sock.type == socket.SOCK_DGRAM else [_SOCKET]
    udp = [_UDP] if sock.type == socket.SOCK_DGRAM else []
    if family == _C["AF_INET"]:
        return [_SOCKET, _V4, *udp]
    if family == _C["AF_INET6"]:
        try:
            v6only = sock.getsockopt(_C["IPPROTO_IPV6"], _C["IPV6_V6ONLY"])
        except OSError:
            v6only = 1
        # A dual-stack socket gets IPv4 datagrams too: set both families' options.
        return [_SOCKET, _V6, *udp] if v6only else [_SOCKET, _V6, _V4, *udp]
    return []


def _candidates(spec: list[tuple[str, str, str]]) -> list[tuple[int, int, int]]:
    return [
        (_C[level], _C[option], _OPTION_VALUES.get(option, 1))
        for level, option, delivered in spec
        if level in _C and option in _C and delivered in _C and (_C[level], _C[delivered]) in NORMALIZER.decoders
    ]


def _set_first(sock: socket.socket, candidates: list[tuple[int, int, int]]) -> bool:
    """Set the first option the OS accepts; False if it accepts none."""
    for option in candidates:
        try:
            sock.setsockopt(*option)
        except OSError:
            continue
        return True
    return False


def _switch_on(sock: socket.socket, families: list[str], feature: Feature) -> bool:
    specs = _OPTIONS[feature]
    wanted = [specs[f] for f in families if f in specs]
    # Every family's options must take (a dual-stack socket needs both).
    return bool(wanted) and all(_set_first(sock, _candidates(spec)) for spec in wanted)


def enable(sock: socket.socket, *features: Feature) -> frozenset[Feature]:
    """Switch on per-datagram metadata; return the features now on.

    Sets the right options for the socket's family on this platform (both
    IPv4 and IPv6 ones on a dual-stack socket).  A feature is in the result
    only if every option it needs was accepted; a feature the platform or
    socket lacks is left out, with no exception.  With no features given,
    tries them all.

    Platforms:
        Where the full TOS / traffic-class byte cannot be had but its ECN
        bits can (Windows' IP_RECVECN), TRAFFIC_CLASS is left out and ECN is
        reported on instead: `Message.ecn` is then right and the DSCP is not
        known (TrafficClass.dscp reads 0).
    """
    if not isinstance(sock, socket.socket):
        msg = f"expected a socket.socket, not {type(sock).__name__}"
        raise TypeError(msg)
    families = _families(sock)
    enabled = set()
    for feature in features or tuple(Feature):
        if not isinstance(feature, Feature):
            msg = f"expected a Feature, not {feature!r}"
            raise TypeError(msg)
        if _switch_on(sock, families, feature):
            enabled.add(feature)
        elif feature is Feature.TRAFFIC_CLASS and _switch_on(sock, families, Feature.ECN):
            enabled.add(Feature.ECN)
    return frozenset(enabled)
