"""Native control messages and flags <-> the shared types in _types.py.

A control message is identified by (level, type) on the running OS, never by
type alone, and never by the option that enabled it (Linux's IP_RECVTOS
delivers type IP_TOS).  Every decoder checks the payload's exact size, read
from the compiled headers (PM_* layout constants); anything unexpected
becomes RawControl, so a control message is never dropped or misread.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Any

from ._encode import V4_MAPPED, Encoder, unsigned
from ._report import RECORD, NativeControl
from ._types import (
    NO_CONTROLS,
    Clock,
    Control,
    Controls,
    Credentials,
    Drops,
    ErrorOrigin,
    FileDescriptors,
    HopLimit,
    Message,
    MsgFlag,
    OriginalDestination,
    PacketInfo,
    QueuedError,
    RawControl,
    SegmentSize,
    Timestamp,
    TrafficClass,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["Normalizer", "cast_flags"]

Decoder = Callable[[bytes], "Control | None"]

_INT = struct.Struct("=i")
_UINT16 = struct.Struct("=H")
_UINT32 = struct.Struct("=I")
_UINT64 = struct.Struct("=Q")
_EXTENDED_ERR = struct.Struct("=IBBBBII")  # sock_extended_err: errno, origin, type, code, pad, info, data
_SOCKADDR_IN, _SOCKADDR_IN6 = 16, 28  # sizeof on every OS (RFC 3493 section 3.3, 3.4)
_ORIGINS = frozenset(ErrorOrigin)
_LIMITED_BROADCAST = IPv4Address("255.255.255.255")
_new_message = tuple.__new__
_CACHE_SIZE = 512
_UNCACHED = (Timestamp, FileDescriptors)
_IPV6_LEN = 16
_IPV4_LEN = 4
# Portable flag -> the C name of its native bit.
_FLAG_NAMES = {
    MsgFlag.PEEK: "MSG_PEEK",
    MsgFlag.OOB: "MSG_OOB",
    MsgFlag.TRUNC: "MSG_TRUNC",
    MsgFlag.CTRUNC: "MSG_CTRUNC",
    MsgFlag.EOR: "MSG_EOR",
    MsgFlag.BCAST: "MSG_BCAST",
    MsgFlag.MCAST: "MSG_MCAST",
    MsgFlag.ERRQUEUE: "MSG_ERRQUEUE",
}


def _signed(size: int) -> str:
    return {1: "b", 2: "h", 4: "i", 8: "q"}[size]


def _ip(packed: bytes) -> IPv4Address | IPv6Address:
    if len(packed) == _IPV6_LEN and packed[:12] == V4_MAPPED:
        return IPv4Address(packed[12:])
    return IPv6Address(packed) if len(packed) == _IPV6_LEN else IPv4Address(packed)


def _small_int(payload: bytes) -> int | None:
    """TOS/TTL/TCLASS/hop limit: one byte on some OSes, an int on others.

    Linux delivers IP_TOS as one byte and IP_TTL as an int (ip(7), "IP_RECVTOS",
    "IP_RECVTTL"); IPv6 TCLASS / HOPLIMIT are ints (RFC 3542 section 6);
    Windows delivers INT for both (learn.microsoft.com, "IPPROTO_IP socket options").
    """
    if len(payload) == 1:
        return payload[0]
    if len(payload) == _INT.size:
        return int(_INT.unpack(payload)[0]) & 0xFF
    return None


class Normalizer:
    """Decoder and encoder for one platform's control messages and flags.

    Args:
        constants: the platform's constants, as in `portmsg.native`.
        platform: a `sys.platform` value; picks which IPv4 TOS/TTL types the
            OS delivers (Linux and Windows: IP_TOS/IP_TTL; BSDs: IP_RECV*).
        perf_frequency: ticks per second of Windows' receive timestamps
            (QueryPerformanceFrequency); None where timestamps carry time.

    """

    def __init__(
        self, constants: Mapping[str, int], platform: str = sys.platform, *, perf_frequency: int | None = None
    ) -> None:
        self.constants = dict(constants)
        self.platform = platform
        self.decoders: dict[tuple[int, int], Decoder] = {}
        self.encoder = Encoder(self.constants, platform)
        c = self.constants
        ip, ip6, sol = c.get("IPPROTO_IP"), c.get("IPPROTO_IPV6"), c.get("SOL_SOCKET")
        udp = c.get("IPPROTO_UDP")
        bsd_types = platform.startswith(("darwin", "freebsd", "netbsd", "openbsd", "dragonfly"))
        tos_name, ttl_name = ("IP_RECVTOS", "IP_RECVTTL") if bsd_types else ("IP_TOS", "IP_TTL")

        def add(level: int | None, name: str, decoder: Decoder | None) -> None:
            if level is not None and name in c and decoder is not None:
                self.decoders[(level, c[name])] = decoder

        # Linux's in_pktinfo is described in ip(7) "IP_PKTINFO", Windows' IN_PKTINFO
        # at learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-in_pktinfo
        add(ip, "IP_PKTINFO", self._pktinfo_decoder("PM_IN_PKTINFO"))
        # in6_pktinfo is described in RFC 3542 section 6.1, Windows' IN6_PKTINFO
        # at learn.microsoft.com/windows/win32/api/ws2ipdef/ns-ws2ipdef-in6_pktinfo
        add(ip6, "IPV6_PKTINFO", self._pktinfo_decoder("PM_IN6_PKTINFO"))
        add(ip6, "IPV6_2292PKTINFO", self._pktinfo_decoder("PM_IN6_PKTINFO"))
        # BSD IP_RECVDSTADDR: the destination as a bare struct in_addr, no interface (ip(4));
        # FreeBSD's only IPv4 form (it has no IP_PKTINFO)
        add(ip, "IP_RECVDSTADDR", _decode_destination_address)
        # TOS byte: ip(7) "IP_RECVTOS"; traffic class int: RFC 3542 section 6.5
        add(ip, tos_name, _decode_traffic_class)
        add(ip6, "IPV6_TCLASS", _decode_traffic_class)
        # Windows' IP_ECN / IPV6_ECN (IP_RECVECN, or a send-side control), an INT
        # holding the ECN bits alone, so the DSCP of this TrafficClass reads 0:
        # learn.microsoft.com/windows/win32/winsock/ipproto-ip-socket-options
        add(ip, "IP_ECN", _decode_traffic_class)
        add(ip6, "IPV6_ECN", _decode_traffic_class)
        # TTL int: ip(7) "IP_RECVTTL"; hop limit int: RFC 3542 section 6.3
        add(ip, ttl_name, _decode_hop_limit)
        add(ip6, "IPV6_HOPLIMIT", _decode_hop_limit)
        add(ip6, "IPV6_2292HOPLIMIT", _decode_hop_limit)
        # struct timespec / timeval: socket(7) "SO_TIMESTAMPNS", "SO_TIMESTAMP"
        add(sol, "SCM_TIMESTAMPNS", self._time_decoder("PM_TIMESPEC", 1))
        add(sol, "SCM_TIMESTAMP", self._time_decoder("PM_TIMEVAL", 1000))
        # Windows' SIO_TIMESTAMPING delivers SO_TIMESTAMP, a UINT64 of QueryPerformanceCounter
        # ticks (Microsoft Learn, "Winsock timestamping")
        if "SIO_TIMESTAMPING" in c and perf_frequency:
            add(sol, "SO_TIMESTAMP", _ticks_decoder(perf_frequency))
        # int[]: unix(7) "SCM_RIGHTS"; struct ucred: unix(7) "SCM_CREDENTIALS"
        add(sol, "SCM_RIGHTS", _decode_fds)
        add(sol, "SCM_CREDENTIALS", _decode_credentials if c.get("PM_UCRED_SIZE") == 12 else None)  # noqa: PLR2004
        # Linux UDP_GRO: an int (udp_cmsg_recv in net/ipv4/udp.c); Windows UDP_COALESCED_INFO:
        # a DWORD (learn.microsoft.com/windows/win32/winsock/ipproto-udp-socket-options)
        add(udp, "UDP_GRO", _decode_segment_size)
        add(udp, "UDP_SEGMENT", _decode_segment_size)
        add(udp, "UDP_COALESCED_INFO", _decode_segment_size)
        add(udp, "UDP_SEND_MSG_SIZE", _decode_segment_size)
        # Linux SO_RXQ_OVFL: a u32 drop counter (sock_recv_drops in net/core/sock.c)
        add(sol, "SO_RXQ_OVFL", _decode_drops)
        # IP_ORIGDSTADDR / IPV6_ORIGDSTADDR: a sockaddr_in / sockaddr_in6 (ip(7) "IP_RECVORIGDSTADDR")
        add(ip, "IP_ORIGDSTADDR", self._original_destination)
        add(ip6, "IPV6_ORIGDSTADDR", self._original_destination)
        # IP_RECVERR / IPV6_RECVERR: struct sock_extended_err, then the offender's sockaddr_in /
        # sockaddr_in6, zeroed when there is none (ip(7) "IP_RECVERR", ipv6(7) "IPV6_RECVERR")
        if "PM_EXTENDED_ERR_SIZE" in c:
            add(ip, "IP_RECVERR", self._queued_error)
            add(ip6, "IPV6_RECVERR", self._queued_error)
        native_flags = {flag: c[name] for flag, name in _FLAG_NAMES.items() if name in c}
        self._flags_from = tuple((native, flag) for flag, native in native_flags.items())
        self._flags_to = native_flags
        self.flags_seen: dict[int, MsgFlag] = {}
        """Native flag values already mapped (the receive paths look here first)."""
        self.cast_sets: dict[bytes, tuple[Control, ...]] = {}
        """Control sets of datagrams sent to a broadcast or multicast address, where the OS
        has no flag for that (POSIX but NetBSD): kept apart from `control_sets`, so the
        receive paths' lookup misses and `message()` adds MsgFlag.BCAST / MCAST."""
        self._derive_cast = "MSG_BCAST" not in c
        self.control_sets: dict[bytes, tuple[Control, ...]] = {}
        """Control bytes already decoded -> their controls (the receive paths look here first).

        A server sees the same control bytes over and over (same destination,
        TOS, TTL); sets with a Timestamp (new every time) or descriptors are
        never kept."""

    # -- decoders built from layout constants -------------------------------

    def _pktinfo_decoder(self, prefix: str) -> Decoder | None:
        c = self.constants
        try:
            size = c[f"{prefix}_SIZE"]
            addr = c[f"{prefix}_ADDR_OFFSET"]
            index = c[f"{prefix}_IFINDEX_OFFSET"]
            index_fmt = "=" + unsigned(c[f"{prefix}_IFINDEX_SIZE"])
        except KeyError:
            return None
        addr_len = 16 if "IN6" in prefix else 4
        index_struct = struct.Struct(index_fmt)
        spec_dst = c.get(f"{prefix}_SPEC_DST_OFFSET")  # Linux's ipi_spec_dst: the local address for replies

        def decode(payload: bytes) -> Control | None:
            if len(payload) != size:
                return None
            (ifindex,) = index_struct.unpack_from(payload, index)
            local = None if spec_dst is None else _ip(payload[spec_dst : spec_dst + addr_len])
            return PacketInfo(_ip(payload[addr : addr + addr_len]), ifindex, local)

        return decode

    def _time_decoder(self, prefix: str, scale: int) -> Decoder | None:
        c = self.constants
        try:
            size = c[f"{prefix}_SIZE"]
            sec_fmt = _signed(c["PM_SIZEOF_TIME_T"])
            frac_offset = c[f"{prefix}_USEC_OFFSET" if scale > 1 else f"{prefix}_NSEC_OFFSET"]
            frac_fmt = _signed(c[f"{prefix}_USEC_SIZE" if scale > 1 else f"{prefix}_NSEC_SIZE"])
        except KeyError:
            return None
        sec_struct, frac_struct = struct.Struct("=" + sec_fmt), struct.Struct("=" + frac_fmt)

        def decode(payload: bytes) -> Control | None:
            if len(payload) != size:
                return None
            (sec,) = sec_struct.unpack_from(payload, 0)
            (frac,) = frac_struct.unpack_from(payload, frac_offset)
            return Timestamp(sec * 1_000_000_000 + frac * scale)

        return decode

    def _sockaddr(self, payload: bytes, offset: int) -> tuple[IPv4Address | IPv6Address, int] | None:
        """(address, port) of the sockaddr_in / sockaddr_in6 at offset, sized exactly; None otherwise."""
        c = self.constants
        at, size = offset + c["PM_SA_FAMILY_OFFSET"], c["PM_SA_FAMILY_SIZE"]
        family = int.from_bytes(payload[at : at + size], sys.byteorder)
        rest, port = len(payload) - offset, int.from_bytes(payload[offset + 2 : offset + 4], "big")
        if family == c.get("AF_INET") and rest == _SOCKADDR_IN:
            return IPv4Address(payload[offset + 4 : offset + 8]), port
        if family == c.get("AF_INET6") and rest == _SOCKADDR_IN6:
            return _ip(payload[offset + 8 : offset + 24]), port
        return None

    def _original_destination(self, payload: bytes) -> Control | None:
        found = self._sockaddr(payload, 0)
        return None if found is None else OriginalDestination(*found)

    def _queued_error(self, payload: bytes) -> Control | None:
        size = self.constants["PM_EXTENDED_ERR_SIZE"]
        if len(payload) not in (size + _SOCKADDR_IN, size + _SOCKADDR_IN6):
            return None
        errno, origin, kind, code, _pad, info, data = _EXTENDED_ERR.unpack_from(payload)
        offender = self._sockaddr(payload, size)
        where = None if offender is None else offender[0]
        return QueuedError(errno, ErrorOrigin(origin) if origin in _ORIGINS else origin, kind, code, info, data, where)

    # -- public ---------------------------------------------------------------

    def normalize(self, ancdata: Iterable[NativeControl]) -> tuple[Control, ...]:
        """Decode native (level, type, data) tuples; unknown or malformed ones become RawControl.

        Equal PacketInfo objects (a dual-stack socket reports an IPv4 datagram
        through both IP_PKTINFO and IPV6_PKTINFO) are merged into one.
        """
        out: list[Control] = []
        seen_pktinfo: PacketInfo | None = None
        for item in ancdata:
            try:
                level, kind, data = item
                payload = data if type(data) is bytes else bytes(memoryview(data))
            except (TypeError, ValueError):
                payload = None
            if payload is None or type(level) is not int or type(kind) is not int:
                msg = f"normalize() takes (level, type, data) tuples of int, int, bytes-like; not {item!r:.60}"
                raise TypeError(msg)
            try:  # subscripts, not dict.get, on every per-datagram lookup here: see _glue.receiver
                decoder: Decoder | None = self.decoders[(level, kind)]
            except KeyError:
                decoder = None
            try:
                control = decoder(payload) if decoder is not None else None
            except (TypeError, ValueError):  # a value no control can hold: keep the bytes
                control = None
            if control is None:
                control = RawControl(level, kind, payload)
            elif type(control) is PacketInfo:
                if control == seen_pktinfo:  # the same arrival reported twice: keep the fuller one
                    if control.local is not None and seen_pktinfo.local is None:
                        out[out.index(seen_pktinfo)] = seen_pktinfo = control
                    continue
                seen_pktinfo = control
            out.append(control)
        return Controls(out)

    def from_records(self, control: bytes, records: Any, base: int, count: int) -> tuple[Control, ...]:
        """Decode a receive's control bytes, with the records the C walker reported.

        records[base : base + RECORD * count] hold [level, type, offset, length]
        per control message (_report.py).  Decoded sets are kept in
        `control_sets`, except sets with a Timestamp or descriptors.
        """
        if not count:
            return NO_CONTROLS
        for cache in (self.control_sets, self.cast_sets):
            try:
                return cache[control]
            except KeyError:
                pass
        controls = self.normalize(
            (records[i], records[i + 1], control[records[i + 2] : records[i + 2] + records[i + 3]])
            for i in range(base, base + RECORD * count, RECORD)
        )
        if not any(type(c) in _UNCACHED for c in controls):
            cache = self.cast_sets if self._derive_cast and cast_flags(controls) else self.control_sets
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[control] = controls
        return controls

    def message(
        self, data: bytes, address: Any, native_flags: int, control: bytes, records: Any, base: int, count: int
    ) -> Message:
        """Build a Message from one receive's parts (the receive paths call this when a lookup misses)."""
        try:
            flags = self.flags_seen[native_flags]
        except KeyError:
            flags = self.flags_from_native(native_flags)
        if count:
            try:
                controls: tuple[Control, ...] | None = self.control_sets[control]
            except KeyError:
                controls = None
            if controls is None:
                controls = self.from_records(control, records, base, count)
                if self._derive_cast:
                    flags |= cast_flags(controls)
        else:
            controls = NO_CONTROLS
        return _new_message(Message, (data, address, flags, controls))

    def encode(
        self, controls: Iterable[Control], family: int | None = None, *, ipv4_destination: bool | None = None
    ) -> list[NativeControl]:
        """Controls -> native (level, type, data) tuples for sendmsg: see Encoder.encode."""
        return self.encoder.encode(controls, family, ipv4_destination=ipv4_destination)

    def flags_from_native(self, value: int) -> MsgFlag:
        """Map native flag bits onto MsgFlag; bits with no portable meaning are dropped."""
        try:
            return self.flags_seen[value]
        except KeyError:
            pass
        result = MsgFlag(0)
        for native, flag in self._flags_from:
            if value & native:
                result |= flag
        if len(self.flags_seen) < 256:  # noqa: PLR2004 - flag combinations are few
            self.flags_seen[value] = result
        return result

    def flags_to_native(self, flags: MsgFlag) -> int:
        """Map MsgFlag onto native bits; ValueError names a flag this platform lacks."""
        native = 0
        for flag in MsgFlag:
            if flags & flag:
                if flag not in self._flags_to:
                    msg = f"MsgFlag.{flag.name} has no native equivalent on this platform"
                    raise ValueError(msg)
                native |= self._flags_to[flag]
        return native


def _decode_traffic_class(payload: bytes) -> Control | None:
    value = _small_int(payload)
    return None if value is None else TrafficClass(value)


def _decode_hop_limit(payload: bytes) -> Control | None:
    value = _small_int(payload)
    return None if value is None else HopLimit(value)


def _decode_fds(payload: bytes) -> Control | None:
    """SCM_RIGHTS: every whole int is a descriptor now open in this process (unix(7)).

    A payload that is not a multiple of 4 (macOS reports an uncut cmsg_len
    after MSG_CTRUNC) still carries whole descriptors: they are handed over,
    as CPython's socket.recv_fds does; the partial tail is dropped.
    """
    count = len(payload) // _INT.size
    return FileDescriptors(struct.unpack_from(f"={count}i", payload)) if count else None


def _decode_credentials(payload: bytes) -> Control | None:
    if len(payload) != 12:  # noqa: PLR2004 - struct ucred
        return None
    return Credentials(*struct.unpack("=iII", payload))


def cast_flags(controls: tuple[Control, ...]) -> MsgFlag:
    """BCAST / MCAST from where the datagram was sent, for OSes that report no such flag.

    Multicast: the destination is a group address.  Broadcast: the limited
    broadcast address, or (Linux) any IPv4 destination that is not the local
    address the OS names for a reply (ipi_spec_dst equals the destination for
    unicast delivery and is the interface's own address for a broadcast).  A
    subnet broadcast is not recognised where the OS names no such address
    (macOS, FreeBSD).
    """
    for control in controls:
        if type(control) is PacketInfo:
            address, local = control.address, control.local
            if address.is_multicast:
                return MsgFlag.MCAST
            if type(address) is IPv4Address and (
                address == _LIMITED_BROADCAST or (local is not None and local != address and not local.is_unspecified)
            ):
                return MsgFlag.BCAST
            break
    return MsgFlag(0)


def _ticks_decoder(frequency: int) -> Decoder:
    """Windows' receive timestamp: performance-counter ticks -> Timestamp on Clock.PERF_COUNTER.

    Scaled as CPython scales time.perf_counter_ns() (ticks * 10**9 // frequency), so the two compare.
    """

    def decode(payload: bytes) -> Control | None:
        if len(payload) != _UINT64.size:
            return None
        (ticks,) = _UINT64.unpack(payload)
        return Timestamp(ticks * 1_000_000_000 // frequency, Clock.PERF_COUNTER)

    return decode


def _decode_destination_address(payload: bytes) -> Control | None:
    """IP_RECVDSTADDR: a struct in_addr; the interface is not known (0)."""
    if len(payload) == _IPV4_LEN:
        return PacketInfo(IPv4Address(payload), 0)
    return None


def _decode_drops(payload: bytes) -> Control | None:
    if len(payload) == _UINT32.size:
        return Drops(int(_UINT32.unpack(payload)[0]))
    return None


def _decode_segment_size(payload: bytes) -> Control | None:
    if len(payload) == _INT.size:
        return SegmentSize(int(struct.unpack("=I", payload)[0]))
    if len(payload) == _UINT16.size:
        return SegmentSize(int(_UINT16.unpack(payload)[0]))
    return None
