"""Receive behaviour, the same on every backend."""

from __future__ import annotations

import socket
import struct
import threading
import time
from ipaddress import IPv4Address, ip_address

import pytest
from helpers import LOOPBACK, Pair, dual_stack_socket, require, send_option, send_with_controls, udp_pair

import portmsg
from portmsg import (
    ECN,
    Clock,
    Feature,
    HopLimit,
    MsgFlag,
    PacketInfo,
    RawControl,
    SegmentSize,
    Timestamp,
    TrafficClass,
    native,
)


def test_recvmsg_returns_stdlib_shape(pair: Pair) -> None:
    pair.send(b"hello")
    data, ancdata, flags, address = portmsg.recvmsg(pair.receiver, 100)
    assert data == b"hello"
    assert ancdata == []
    assert flags == 0
    assert address == pair.sender.getsockname()


def test_recvmsg_into_scatters_over_buffers(pair: Pair) -> None:
    pair.send(b"0123456789")
    first, second = bytearray(4), memoryview(bytearray(10))
    nbytes, ancdata, flags, address = portmsg.recvmsg_into(pair.receiver, [first, second])
    assert nbytes == 10
    assert bytes(first) == b"0123"
    assert bytes(second[:6]) == b"456789"
    assert (ancdata, flags) == ([], 0)
    assert address == pair.sender.getsockname()


def test_recv_returns_message(pair: Pair) -> None:
    message = pair.roundtrip(b"payload")
    assert message.data == b"payload"
    assert message.address == pair.sender.getsockname()
    assert message.flags == MsgFlag(0)
    assert not message.truncated
    assert message.packet_info is None
    assert message.ecn is None


def test_zero_length_datagram(pair: Pair) -> None:
    message = pair.roundtrip(b"")
    assert message.data == b""
    assert not message.truncated
    pair.send(b"")
    assert portmsg.recvmsg(pair.receiver, 10)[0] == b""


def test_packet_info_gives_destination_and_interface(pair: Pair) -> None:
    pair.require(Feature.PACKET_INFO)
    message = pair.roundtrip()
    info = message.packet_info
    assert info is not None
    assert info.address == ip_address(LOOPBACK[pair.family])
    assert info.interface > 0
    assert [c for c in message.controls if isinstance(c, PacketInfo)] == [info]


def test_packet_info_tells_apart_two_loopback_destinations() -> None:
    with udp_pair(socket.AF_INET, bind="0.0.0.0") as pair:
        pair.require(Feature.PACKET_INFO)
        port = pair.address[1]
        seen = []
        for destination in ("127.0.0.1", "127.0.0.2"):
            pair.sender.sendto(destination.encode(), (destination, port))
            message = portmsg.recv(pair.receiver)
            assert message.packet_info is not None
            seen.append((message.data.decode(), str(message.packet_info.address)))
        assert seen == [("127.0.0.1", "127.0.0.1"), ("127.0.0.2", "127.0.0.2")]


def test_dual_stack_socket_reports_ipv4_destination_once() -> None:
    receiver = dual_stack_socket()
    with receiver, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        require(receiver, Feature.PACKET_INFO)
        sender.sendto(b"v4", ("127.0.0.1", receiver.getsockname()[1]))
        message = portmsg.recv(receiver)
        assert message.data == b"v4"
        assert message.address[0] == "::ffff:127.0.0.1"
        infos = [c for c in message.controls if isinstance(c, PacketInfo)]
        assert len(infos) == 1
        assert infos[0].address == IPv4Address("127.0.0.1")


def _set_traffic_class(pair: Pair, value: int) -> None:
    try:
        pair.sender.setsockopt(*send_option(pair.family, "tclass"), value)
    except OSError as exc:
        if pair.family == socket.AF_INET:
            raise
        pytest.skip(f"{portmsg.PLATFORM} cannot set IPV6_TCLASS on the sending socket: {exc}")


@pytest.mark.parametrize("tos", [0x00, 0x02, 0x03, 0xB9])
def test_traffic_class_carries_full_byte_and_ecn(pair: Pair, tos: int) -> None:
    pair.require(Feature.TRAFFIC_CLASS)
    _set_traffic_class(pair, tos)
    message = pair.roundtrip()
    assert message.traffic_class == TrafficClass(tos)
    assert message.ecn == ECN(tos & 3)
    assert message.traffic_class is not None
    assert message.traffic_class.dscp == tos >> 2


def test_ecn_feature_delivers_the_codepoint(pair: Pair) -> None:
    pair.require(Feature.ECN)
    _set_traffic_class(pair, 0xB8 | int(ECN.ECT0))
    assert pair.roundtrip().ecn is ECN.ECT0


def test_hop_limit_arrives(pair: Pair) -> None:
    pair.require(Feature.HOP_LIMIT)
    pair.sender.setsockopt(*send_option(pair.family, "hops"), 33)
    assert pair.roundtrip().hop_limit == HopLimit(33)


def test_timestamp_is_kernel_receive_time(pair: Pair) -> None:
    """POSIX stamps wall time; Windows (SIO_TIMESTAMPING; Wine refuses it) the performance counter."""
    pair.require(Feature.TIMESTAMP)
    clock = Clock.PERF_COUNTER if portmsg.BACKEND == "winsock" else Clock.REALTIME
    now = time.perf_counter_ns if clock is Clock.PERF_COUNTER else time.time_ns
    before = now()
    message = pair.roundtrip()
    after = now()
    assert isinstance(message.timestamp, Timestamp)
    assert message.timestamp.clock is clock
    # The kernel stamps on arrival: within the send/receive window (1 ms slack for clock granularity).
    assert before - 1_000_000 <= message.timestamp.ns <= after + 1_000_000


def test_every_control_is_decoded_or_kept_raw(pair: Pair) -> None:
    on = pair.enable()
    message = pair.roundtrip()
    kinds = {type(c) for c in message.controls}
    expected = {
        Feature.PACKET_INFO: PacketInfo,
        Feature.TRAFFIC_CLASS: TrafficClass,
        Feature.HOP_LIMIT: HopLimit,
        Feature.TIMESTAMP: Timestamp,
    }
    for feature, kind in expected.items():
        assert (kind in kinds) == (feature in on), feature
    assert RawControl not in kinds, message.controls


def test_enable_off_features_stay_off(pair: Pair) -> None:
    assert pair.enable(Feature.HOP_LIMIT) <= {Feature.HOP_LIMIT}
    message = pair.roundtrip()
    assert message.packet_info is None
    assert message.timestamp is None


def test_peek_leaves_datagram_queued(pair: Pair) -> None:
    pair.send(b"peeked")
    first = portmsg.recv(pair.receiver, peek=True)
    second = portmsg.recv(pair.receiver)
    assert first.data == second.data == b"peeked"
    assert not first.truncated
    pair.send(b"again")
    data, _, _, _ = portmsg.recvmsg(pair.receiver, 100, 0, native.MSG_PEEK)
    assert data == b"again"
    assert portmsg.recvmsg(pair.receiver, 100)[0] == b"again"


def test_truncated_datagram_sets_trunc(pair: Pair) -> None:
    pair.send(b"x" * 100)
    message = portmsg.recv(pair.receiver, 10)
    assert message.data == b"x" * 10
    assert message.truncated
    assert MsgFlag.TRUNC in message.flags
    assert MsgFlag.CTRUNC not in message.flags


def test_truncated_datagram_sets_native_msg_trunc_in_level1(pair: Pair) -> None:
    pair.send(b"y" * 100)
    data, _, flags, _ = portmsg.recvmsg(pair.receiver, 10)
    assert data == b"y" * 10
    assert flags & native.MSG_TRUNC


def test_truncated_peek_keeps_datagram(pair: Pair) -> None:
    pair.send(b"z" * 50)
    assert portmsg.recv(pair.receiver, 5, peek=True).truncated
    assert portmsg.recv(pair.receiver).data == b"z" * 50


def test_small_control_buffer_sets_ctrunc(pair: Pair) -> None:
    pair.require(Feature.PACKET_INFO, Feature.HOP_LIMIT)
    message = pair.roundtrip(ancbufsize=1)
    assert MsgFlag.CTRUNC in message.flags
    assert not message.truncated


def test_nonblocking_empty_socket_raises_blocking_io_error(pair: Pair) -> None:
    pair.receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        portmsg.recv(pair.receiver)
    with pytest.raises(BlockingIOError):
        portmsg.recvmsg(pair.receiver, 10)


def test_timeout_raises_timeout_error_after_the_timeout(pair: Pair) -> None:
    pair.receiver.settimeout(0.2)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="timed out"):
        portmsg.recv(pair.receiver)
    assert time.monotonic() - start >= 0.19


def test_timeout_socket_receives_datagram_sent_while_waiting(pair: Pair) -> None:
    pair.receiver.settimeout(5)
    timer = threading.Timer(0.1, pair.send, args=(b"late",))
    timer.start()
    try:
        assert portmsg.recv(pair.receiver).data == b"late"
    finally:
        timer.join()


def test_blocking_recv_releases_the_gil(pair: Pair) -> None:
    pair.receiver.settimeout(None)
    ticks = []
    done = threading.Event()

    def count() -> None:
        while not done.is_set():
            ticks.append(1)
            time.sleep(0.001)

    counter = threading.Thread(target=count)
    counter.start()
    timer = threading.Timer(0.3, pair.send, args=(b"wake",))
    timer.start()
    try:
        assert portmsg.recv(pair.receiver).data == b"wake"
    finally:
        done.set()
        counter.join()
        timer.join()
    assert len(ticks) > 10


def test_closed_socket_raises_like_stdlib(pair: Pair) -> None:
    pair.receiver.close()
    with pytest.raises(OSError) as ours:
        portmsg.recv(pair.receiver)
    with pytest.raises(OSError) as stdlib:
        pair.receiver.recvfrom(10)
    assert type(ours.value) is type(stdlib.value)
    assert ours.value.errno == stdlib.value.errno


def test_message_is_frozen_and_hashable(pair: Pair) -> None:
    pair.enable()
    message = pair.roundtrip()
    with pytest.raises(AttributeError):
        message.data = b"other"  # type: ignore[misc]
    twin = portmsg.Message(message.data, message.address, message.flags, message.controls)
    assert twin == message
    assert hash(twin) == hash(message)
    assert {message: 1}[twin] == 1
    assert repr(message).startswith("Message(data=b'ping', address=")


def test_gro_coalesces_a_gso_burst_and_segments_split_it(pair: Pair) -> None:
    pair.require(Feature.SEGMENT_OFFLOAD)
    payload = bytes(range(100)) * 3 + b"tail" * 10  # 340 bytes: 100, 100, 100, 40
    send_with_controls(pair.sender, payload, pair.address, [SegmentSize(100)])
    message = portmsg.recv(pair.receiver)
    # A GSO burst reaches a GRO socket whole (Linux keeps it one skb on loopback).
    assert message.segment_size == SegmentSize(100)
    assert message.data == payload
    assert message.segments() == [payload[0:100], payload[100:200], payload[200:300], payload[300:]]


def test_non_socket_argument_is_a_type_error() -> None:
    for call in (lambda: portmsg.recv(5), lambda: portmsg.recvmsg(5, 10), lambda: portmsg.sendmsg(5, [b"x"])):  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="socket"):
            call()
    with pytest.raises(TypeError):
        socket.socket.recvfrom(5, 10)  # type: ignore[arg-type]  # the stdlib's class for the same mistake


def test_repeated_and_changing_metadata_are_never_mixed_up(pair: Pair) -> None:
    """Consecutive receives reuse objects for a repeated sender or control set; changes must show."""
    pair.require(Feature.HOP_LIMIT)
    with socket.socket(pair.family, socket.SOCK_DGRAM) as other:
        other.bind((LOOPBACK[pair.family], 0))
        level, option = send_option(pair.family, "hops")
        pair.sender.setsockopt(level, option, 7)
        other.setsockopt(level, option, 9)
        plan = [pair.sender, pair.sender, other, other, pair.sender, other, pair.sender, pair.sender]
        for i, sock in enumerate(plan):
            sock.sendto(b"%d" % i, pair.address)
            if i % 2:
                message = portmsg.recv(pair.receiver)
                assert message.hop_limit == HopLimit(7 if sock is pair.sender else 9)
            else:
                data, ancdata, _, address = portmsg.recvmsg(pair.receiver, 100, 256)
                assert data == b"%d" % i
                assert len(ancdata) == 1
                assert portmsg.normalize(ancdata) == (HopLimit(7 if sock is pair.sender else 9),)
                message = portmsg.Message(data, address, MsgFlag(0), ())
            assert message.address == sock.getsockname()


def test_recv_into_fills_the_callers_buffer(pair: Pair) -> None:
    pair.require(Feature.PACKET_INFO)
    buffer = bytearray(64)
    view = memoryview(buffer)
    for payload in (b"first", b"second datagram"):
        pair.send(payload)
        nbytes, message = portmsg.recv_into(pair.receiver, view)
        assert bytes(view[:nbytes]) == payload
        assert message.data == b""
        assert message.packet_info is not None
        assert message.address == pair.sender.getsockname()
    pair.send(b"z" * 100)
    nbytes, message = portmsg.recv_into(pair.receiver, buffer)
    assert message.truncated
    assert nbytes == 64
    with pytest.raises(TypeError, match="writable"):
        portmsg.recv_into(pair.receiver, b"read-only")


# -- a cut control buffer never exposes bytes the datagram did not carry ---------------


def _fill_pooled_buffer(pair: Pair) -> None:
    """Leave 100 bytes of another datagram in portmsg's reused receive buffer."""
    pair.send(b"S" * 100)
    assert portmsg.recvmsg(pair.receiver, 100)[0] == b"S" * 100


def test_level1_cut_controls_report_only_the_datagrams_bytes(pair: Pair) -> None:
    pair.require(Feature.PACKET_INFO)
    _fill_pooled_buffer(pair)
    pair.send(b"d" * 40)
    data, _, flags, _ = portmsg.recvmsg(pair.receiver, 100, portmsg.CMSG_LEN(1))
    assert data == b"d" * 40
    assert flags & native.MSG_CTRUNC
    assert not flags & native.MSG_TRUNC


def test_level1_into_cut_controls_report_only_the_datagrams_bytes(pair: Pair) -> None:
    pair.require(Feature.PACKET_INFO)
    pair.send(b"d" * 40)
    buffer = bytearray(b"X" * 100)
    nbytes, _, flags, _ = portmsg.recvmsg_into(pair.receiver, [buffer], portmsg.CMSG_LEN(1))
    assert nbytes == 40
    assert buffer == b"d" * 40 + b"X" * 60
    assert flags & native.MSG_CTRUNC


def test_level2_cut_controls_report_only_the_datagrams_bytes(pair: Pair) -> None:
    pair.require(Feature.PACKET_INFO, Feature.HOP_LIMIT)
    pair.enable(Feature.TRAFFIC_CLASS)
    _fill_pooled_buffer(pair)
    message = pair.roundtrip(b"d" * 40, bufsize=100, ancbufsize=portmsg.CMSG_SPACE(4))
    assert message.data == b"d" * 40
    assert MsgFlag.CTRUNC in message.flags
    assert not message.truncated


def test_cut_data_and_cut_controls_set_both_flags(pair: Pair) -> None:
    pair.require(Feature.PACKET_INFO)
    pair.send(bytes(range(200)))
    data, _, flags, _ = portmsg.recvmsg(pair.receiver, 100, portmsg.CMSG_LEN(1))
    assert data == bytes(range(100))
    assert flags & native.MSG_TRUNC
    assert flags & native.MSG_CTRUNC
    pair.send(bytes(range(200)))
    message = portmsg.recv(pair.receiver, 100, ancbufsize=portmsg.CMSG_LEN(1))
    assert message.flags & (MsgFlag.TRUNC | MsgFlag.CTRUNC) == MsgFlag.TRUNC | MsgFlag.CTRUNC


def test_a_hand_set_receive_timeout_is_honoured_as_the_stdlib_does(pair: Pair) -> None:
    """SO_RCVTIMEO on a blocking socket: both give up after it, with the same error."""
    pair.receiver.settimeout(None)
    value = (
        struct.pack("=I", 300) if portmsg.BACKEND == "winsock" else struct.pack("ll", 0, 300_000)
    )  # struct timeval, native sizes
    pair.receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, value)
    start = time.monotonic()
    with pytest.raises(OSError) as ours:
        portmsg.recv(pair.receiver)
    waited = time.monotonic() - start
    with pytest.raises(OSError) as stdlib:
        pair.receiver.recvfrom(10)
    assert type(ours.value) is type(stdlib.value)
    assert ours.value.errno == stdlib.value.errno
    assert 0.25 <= waited < 3


@pytest.mark.parametrize("cut_controls", [False, True], ids=["controls-fit", "controls-cut"])
def test_a_datagram_that_fills_the_buffer_exactly_is_whole_and_one_byte_more_is_cut(
    pair: Pair, cut_controls: bool
) -> None:
    """Exact on every backend: under Wine too (whose WSAEMSGSIZE with MSG_CTRUNC says nothing of the data),
    where portmsg receives into one spare byte past the caller's buffers and never hands it out."""
    pair.require(Feature.PACKET_INFO)
    ancbufsize = portmsg.CMSG_LEN(1) if cut_controls else portmsg.CMSG_SPACE(64)
    for size, cut in ((100, False), (101, True)):
        pair.send(bytes(range(size)))
        data, _, flags, _ = portmsg.recvmsg(pair.receiver, 100, ancbufsize)
        assert data == bytes(range(min(size, 100)))
        assert bool(flags & native.MSG_TRUNC) == cut, (size, flags)
        assert bool(flags & native.MSG_CTRUNC) == cut_controls
        buffer = bytearray(100)
        pair.send(bytes(range(size)))
        nbytes, _, flags, _ = portmsg.recvmsg_into(pair.receiver, [buffer], ancbufsize)
        assert (nbytes, bytes(buffer[:nbytes])) == (min(size, 100), bytes(range(min(size, 100))))
        assert bool(flags & native.MSG_TRUNC) == cut
        message = pair.roundtrip(bytes(range(size)), bufsize=100, ancbufsize=ancbufsize)
        assert message.truncated == cut
