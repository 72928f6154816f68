"""The normalizer on hand-made native tuples: no socket involved.

Payloads are built from this platform's layout constants (sizes, offsets,
field widths of the compiled module), so the same file checks the cmsghdr
world on POSIX and the WSACMSGHDR world under Wine.  Payloads whose width the
OS defines as a fixed C type (an int TTL, a u8 TOS) are packed as that type.
"""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv6Address

import pytest
from helpers import walk
from hypothesis import given, settings
from hypothesis import strategies as st

import portmsg
from portmsg import (
    ECN,
    Credentials,
    FileDescriptors,
    HopLimit,
    MsgFlag,
    PacketInfo,
    RawControl,
    SegmentSize,
    Timestamp,
    TrafficClass,
    native,
)
from portmsg._api import NORMALIZER

C = NORMALIZER.constants
IP, IP6 = C["IPPROTO_IP"], C["IPPROTO_IPV6"]


def _has(*names: str) -> bool:
    return all(n in C for n in names)


_INTS = {1: "B", 2: "H", 4: "I", 8: "Q"}
_SIGNED = {4: "i", 8: "q"}


def _pack_uint(payload: bytearray, prefix: str, value: int) -> None:
    """Write value into the field {prefix}_OFFSET / {prefix}_SIZE of a payload, as the compiled layout says."""
    struct.pack_into("=" + _INTS[C[f"{prefix}_SIZE"]], payload, C[f"{prefix}_OFFSET"], value)


def _time_payload(prefix: str, fraction: str, seconds: int, frac: int) -> bytes:
    """A struct timespec / timeval laid out from the compiled sizes and offsets."""
    payload = bytearray(C[f"{prefix}_SIZE"])
    struct.pack_into("=" + _SIGNED[C["PM_SIZEOF_TIME_T"]], payload, 0, seconds)
    struct.pack_into("=" + _SIGNED[C[f"{prefix}_{fraction}_SIZE"]], payload, C[f"{prefix}_{fraction}_OFFSET"], frac)
    return bytes(payload)


def _sendable_controls() -> list[portmsg.Control]:
    controls: list[portmsg.Control] = [RawControl(1234, 5678, b"\x01\x02\x03")]
    if _has("IP_PKTINFO", "PM_IN_PKTINFO_SIZE"):
        controls.append(PacketInfo(IPv4Address("192.0.2.7"), 3))
    if _has("IPV6_PKTINFO", "PM_IN6_PKTINFO_SIZE"):
        controls.append(PacketInfo(IPv6Address("2001:db8::1"), 4))
    return controls


def test_unknown_control_is_kept_raw() -> None:
    assert portmsg.normalize([(1234, 5678, b"abc")]) == (RawControl(1234, 5678, b"abc"),)


@pytest.mark.skipif(not _has("IP_PKTINFO", "PM_IN_PKTINFO_SIZE"), reason="no IP_PKTINFO on this platform")
def test_ipv4_packet_info_from_native_layout() -> None:
    ((level, kind, data),) = portmsg.encode([PacketInfo(IPv4Address("10.1.2.3"), 7)])
    assert (level, kind) == (IP, C["IP_PKTINFO"])
    assert len(data) == C["PM_IN_PKTINFO_SIZE"]
    assert data[C["PM_IN_PKTINFO_ADDR_OFFSET"] :][:4] == bytes([10, 1, 2, 3])
    assert portmsg.normalize([(level, kind, data)]) == (PacketInfo(IPv4Address("10.1.2.3"), 7),)


@pytest.mark.skipif(not _has("IPV6_PKTINFO", "PM_IN6_PKTINFO_SIZE"), reason="no IPV6_PKTINFO on this platform")
def test_ipv6_packet_info_unmaps_ipv4_mapped_address() -> None:
    payload = bytearray(C["PM_IN6_PKTINFO_SIZE"])
    offset = C["PM_IN6_PKTINFO_ADDR_OFFSET"]
    payload[offset : offset + 16] = IPv6Address("::ffff:127.0.0.2").packed
    _pack_uint(payload, "PM_IN6_PKTINFO_IFINDEX", 1)
    assert portmsg.normalize([(IP6, C["IPV6_PKTINFO"], bytes(payload))]) == (PacketInfo(IPv4Address("127.0.0.2"), 1),)


@pytest.mark.skipif(not _has("IP_PKTINFO", "IPV6_PKTINFO"), reason="needs both pktinfo options")
def test_equal_packet_infos_from_both_families_merge() -> None:
    v4 = portmsg.encode([PacketInfo(IPv4Address("127.0.0.1"), 1)])[0]
    payload = bytearray(C["PM_IN6_PKTINFO_SIZE"])
    offset = C["PM_IN6_PKTINFO_ADDR_OFFSET"]
    payload[offset : offset + 16] = IPv6Address("::ffff:127.0.0.1").packed
    _pack_uint(payload, "PM_IN6_PKTINFO_IFINDEX", 1)
    v6 = (IP6, C["IPV6_PKTINFO"], bytes(payload))
    assert portmsg.normalize([v4, v6]) == (PacketInfo(IPv4Address("127.0.0.1"), 1),)


@pytest.mark.parametrize("payload", [b"\xb9", struct.pack("=i", 0xB9)], ids=["u8", "int"])
def test_traffic_class_accepts_byte_and_int_widths(payload: bytes) -> None:
    (tc,) = portmsg.normalize([(IP, C["IP_TOS"], payload)])
    assert tc == TrafficClass(0xB9)
    assert isinstance(tc, TrafficClass)
    assert (tc.ecn, tc.dscp) == (ECN.ECT1, 0xB9 >> 2)


@pytest.mark.parametrize("payload", [b"", b"\x01\x02", b"\x00" * 3, b"\x00" * 8])
def test_wrong_size_payloads_become_raw(payload: bytes) -> None:
    keys = [(IP, C["IP_TOS"]), (IP, C["IP_TTL"])]
    if _has("IP_PKTINFO") and len(payload) != C["PM_IN_PKTINFO_SIZE"]:
        keys.append((IP, C["IP_PKTINFO"]))
    if _has("IPV6_PKTINFO"):
        keys.append((IP6, C["IPV6_PKTINFO"]))
    for level, kind in keys:
        assert portmsg.normalize([(level, kind, payload)]) == (RawControl(level, kind, payload),)


def test_hop_limit_from_int() -> None:
    assert portmsg.normalize([(IP, C["IP_TTL"], struct.pack("=i", 64))]) == (HopLimit(64),)


@pytest.mark.skipif(not _has("SCM_TIMESTAMPNS"), reason="no SCM_TIMESTAMPNS on this platform")
def test_timestamp_from_timespec() -> None:
    data = _time_payload("PM_TIMESPEC", "NSEC", 1_700_000_000, 123_456_789)
    assert portmsg.normalize([(C["SOL_SOCKET"], C["SCM_TIMESTAMPNS"], data)]) == (Timestamp(1_700_000_000_123_456_789),)


@pytest.mark.skipif(not _has("SCM_TIMESTAMP", "PM_TIMEVAL_SIZE"), reason="no SCM_TIMESTAMP on this platform")
def test_timestamp_from_timeval() -> None:
    data = _time_payload("PM_TIMEVAL", "USEC", 1_700_000_000, 654_321)
    assert portmsg.normalize([(C["SOL_SOCKET"], C["SCM_TIMESTAMP"], data)]) == (Timestamp(1_700_000_000_654_321_000),)


@pytest.mark.skipif(not _has("SCM_RIGHTS"), reason="no SCM_RIGHTS on this platform")
def test_fds_with_partial_trailing_int_are_handed_over_whole() -> None:
    """Whole descriptors are never left in a RawControl (macOS reports an uncut length after CTRUNC)."""
    level, kind = C["SOL_SOCKET"], C["SCM_RIGHTS"]
    assert portmsg.normalize([(level, kind, struct.pack("=2i", 5, 6))]) == (FileDescriptors((5, 6)),)
    assert portmsg.normalize([(level, kind, struct.pack("=2i", 5, 6) + b"\x07\x00")]) == (FileDescriptors((5, 6)),)
    assert portmsg.normalize([(level, kind, b"\x05\x00\x00")]) == (RawControl(level, kind, b"\x05\x00\x00"),)


@pytest.mark.skipif(not _has("SCM_CREDENTIALS"), reason="no SCM_CREDENTIALS on this platform")
def test_credentials_round_trip() -> None:
    assert portmsg.normalize(portmsg.encode([Credentials(12, 1000, 100)])) == (Credentials(12, 1000, 100),)


def test_segment_size_round_trip() -> None:
    if not (_has("UDP_SEGMENT") or _has("UDP_SEND_MSG_SIZE")):
        with pytest.raises(ValueError, match="SegmentSize cannot be sent"):
            portmsg.encode([SegmentSize(1200)])
        return
    assert portmsg.normalize(portmsg.encode([SegmentSize(1200)])) == (SegmentSize(1200),)


@pytest.mark.parametrize("family", [socket.AF_INET, socket.AF_INET6], ids=["AF_INET", "AF_INET6"])
@pytest.mark.parametrize("control", [TrafficClass(0xB9), TrafficClass(0), HopLimit(1), HopLimit(255)])
def test_family_dependent_controls_round_trip(family: int, control: portmsg.Control) -> None:
    if isinstance(control, TrafficClass) and control.dscp and _has("IP_ECN"):
        # Windows marks only the ECN bits per datagram (IP_ECN): a DSCP cannot be sent.
        with pytest.raises(ValueError, match="only the ECN bits"):
            portmsg.encode([control], family)
        return
    assert portmsg.normalize(portmsg.encode([control], family)) == (control,)


def test_family_dependent_control_needs_family() -> None:
    with pytest.raises(ValueError, match="needs family"):
        portmsg.encode([TrafficClass(2)])


def test_timestamp_cannot_be_sent() -> None:
    with pytest.raises(ValueError, match="receive-only"):
        portmsg.encode([Timestamp(1)])


def test_non_control_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="control object"):
        portmsg.encode(["nope"])  # type: ignore[list-item]


@pytest.mark.parametrize("value", [-1, 256])
def test_out_of_range_byte_values_are_rejected(value: int) -> None:
    with pytest.raises(ValueError, match="0-255"):
        portmsg.encode([TrafficClass(value)], socket.AF_INET)


@given(st.sampled_from(_sendable_controls()))
def test_round_trip_sendable_controls(control: portmsg.Control) -> None:
    assert portmsg.normalize(portmsg.encode([control])) == (control,)


@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.binary(max_size=64))
def test_arbitrary_payloads_never_raise(level: int, kind: int, payload: bytes) -> None:
    keys = [*NORMALIZER.decoders, (level, kind)]
    for key in keys:
        (control,) = portmsg.normalize([(key[0], key[1], payload)])
        if isinstance(control, RawControl):
            assert (control.level, control.type, control.data) == (key[0], key[1], payload)


def test_msgflag_maps_native_bits() -> None:
    assert MsgFlag.from_native(native.MSG_TRUNC) == MsgFlag.TRUNC
    assert MsgFlag.from_native(native.MSG_CTRUNC | native.MSG_PEEK) == MsgFlag.CTRUNC | MsgFlag.PEEK
    assert (MsgFlag.TRUNC | MsgFlag.PEEK).to_native() == native.MSG_TRUNC | native.MSG_PEEK
    assert MsgFlag.from_native(0) == MsgFlag(0)


def test_msgflag_rejects_flag_platform_lacks() -> None:
    missing = [f for f in MsgFlag if not hasattr(native, "MSG_" + (f.name or ""))]
    for flag in missing:
        with pytest.raises(ValueError, match="no native equivalent"):
            flag.to_native()


def test_controls_are_hashable_and_readable() -> None:
    controls = [
        PacketInfo(IPv4Address("127.0.0.1"), 1),
        TrafficClass(3),
        HopLimit(2),
        Timestamp(5),
        FileDescriptors((1,)),
        Credentials(1, 2, 3),
        SegmentSize(9),
        RawControl(1, 2, b""),
    ]
    assert len(set(controls)) == len(controls)
    assert repr(controls[0]) == "PacketInfo(address=IPv4Address('127.0.0.1'), interface=1, local=None)"
    assert TrafficClass(3).ecn is ECN.CE


# -- the C walker over arbitrary control bytes ---------------------------------------

_HEADER = portmsg.CMSG_LEN(0)
_LEN_FORMAT = {4: "=I", 8: "=Q"}[C["PM_CMSG_LEN_SIZE"]]


def _header(length: int, level: int, kind: int) -> bytes:
    raw = bytearray(_HEADER)
    struct.pack_into(_LEN_FORMAT, raw, 0, length)
    struct.pack_into("=ii", raw, C["PM_CMSG_LEN_SIZE"], level, kind)
    return bytes(raw)


@settings(max_examples=1000)
@given(st.binary(max_size=512))
def test_walker_records_stay_inside_any_buffer(data: bytes) -> None:
    for _level, _kind, offset, length in walk(data):
        assert offset + length <= len(data)


@settings(max_examples=1000)
@given(
    st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(-(2**31), 2**31 - 1), st.binary(max_size=40)), max_size=6)
)
def test_walker_on_hostile_lengths(items: list[tuple[int, int, bytes]]) -> None:
    data = b"".join(_header(length, 0, kind) + payload for length, kind, payload in items)
    records = walk(data)
    assert len(records) <= len(items)
    for _level, _kind, offset, length in records:
        assert 0 <= offset <= offset + length <= len(data)


def test_walker_reads_well_formed_chain_and_clamps_overlong_last() -> None:
    first = _header(_HEADER + 3, 1, 2) + b"abc"
    first += bytes(portmsg.CMSG_SPACE(3) - len(first))
    second = _header(_HEADER + 100, 3, 4) + b"xy"  # claims 100 bytes, only 2 are there
    records = walk(first + second)
    assert records == [(1, 2, _HEADER, 3), (3, 4, len(first) + _HEADER, 2)]


def test_walker_stops_at_zeroed_header() -> None:
    data = _header(_HEADER + 1, 5, 6) + b"\x01" + bytes(portmsg.CMSG_SPACE(1) - _HEADER - 1) + bytes(_HEADER * 2)
    assert walk(data) == [(5, 6, _HEADER, 1)]
