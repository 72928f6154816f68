"""enable(): which socket options switch each Feature on, per family and platform, and the switch itself."""

from __future__ import annotations

import _socket
import errno
import socket

from . import _args
from ._backend import IMPL
from ._types import Enabled, Feature

__all__ = ["enable"]

_C = IMPL.constants
NORMALIZER = IMPL.normalizer
_AF_UNIX = _C.get("AF_UNIX", -1)
_AF_INET6 = _C["AF_INET6"]
_STREAM = int(socket.SOCK_STREAM)
_family = _socket.socket.family.__get__  # the int, without socket.socket's IntEnum property
_type = _socket.socket.type.__get__

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
_UNSUPPORTED_WINERROR = {_C[name] for name in ("WSAENOPROTOOPT", "WSAEINVAL", "WSAEOPNOTSUPP") if name in _C}


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
    for feature in features:  # every argument is checked before any option is set
        if not isinstance(feature, Feature):
            msg = f"expected a Feature, not {feature!r}"
            raise TypeError(msg)
    groups = _option_groups(sock)
    on: set[Feature] = set()
    refused: dict[Feature, str] = {}
    for feature in features or _BY_DEFAULT:
        why = _switch_on(sock, groups, feature)
        if why is None:
            on.add(feature)
        elif feature is Feature.TRAFFIC_CLASS and _switch_on(sock, groups, Feature.ECN) is None:
            on.add(Feature.ECN)
            refused[feature] = f"{why} (ECN bits alone are on instead)"
        else:
            refused[feature] = why
    return Enabled(on, {f: why for f, why in refused.items() if f not in on})
