"""recv_batch: the same on every backend (recvmmsg on Linux, a loop elsewhere)."""

from __future__ import annotations

import socket
import time

import pytest
from helpers import LOOPBACK, Pair, mixed_senders, send_mixed, send_option, send_with_controls

import portmsg
from portmsg import Feature, MsgFlag, SegmentSize, TrafficClass


def _drain(pair: Pair, expected: int, **kwargs: object) -> list[portmsg.Message]:
    got: list[portmsg.Message] = []
    while len(got) < expected:
        got.extend(portmsg.recv_batch(pair.receiver, **kwargs))  # type: ignore[arg-type]
    return got


def test_batch_returns_queued_datagrams_in_order(pair: Pair) -> None:
    pair.require(Feature.PACKET_INFO)
    for i in range(40):
        pair.send(b"%d" % i)
    messages = _drain(pair, 40, max_messages=16)
    assert [m.data for m in messages] == [b"%d" % i for i in range(40)]
    assert all(m.packet_info is not None for m in messages)
    assert {m.address for m in messages} == {pair.sender.getsockname()}


def test_batch_never_waits_for_more_than_the_first(pair: Pair) -> None:
    pair.send(b"only")
    start = time.monotonic()
    messages = portmsg.recv_batch(pair.receiver, 32)
    assert [m.data for m in messages] == [b"only"]
    assert time.monotonic() - start < 1.0


def test_batch_keeps_senders_and_controls_apart(pair: Pair) -> None:
    """Consecutive datagrams from different senders, with different TOS, keep their own values."""
    pair.require(Feature.TRAFFIC_CLASS)
    with socket.socket(pair.family, socket.SOCK_DGRAM) as other:
        other.bind((LOOPBACK[pair.family], 0))
        level, option = send_option(pair.family, "tclass")
        try:
            pair.sender.setsockopt(level, option, 0x02)
            other.setsockopt(level, option, 0x03)
        except OSError as exc:
            pytest.skip(f"{portmsg.PLATFORM} cannot set a traffic class on the sending socket: {exc}")
        plan = [pair.sender, pair.sender, other, pair.sender, other, other, pair.sender]
        for i, sock in enumerate(plan):
            sock.sendto(b"%d" % i, pair.address)
        messages = _drain(pair, len(plan))
        for message, sock in zip(messages, plan, strict=True):
            assert message.address == sock.getsockname()
            assert message.traffic_class == TrafficClass(0x02 if sock is pair.sender else 0x03)


def test_batch_flags_truncation_per_datagram(pair: Pair) -> None:
    for payload in (b"a" * 10, b"b" * 100, b"c" * 10):
        pair.send(payload)
    messages = _drain(pair, 3, bufsize=20)
    assert [m.truncated for m in messages] == [False, True, False]
    assert messages[1].data == b"b" * 20
    assert MsgFlag.TRUNC in messages[1].flags


def test_batch_on_empty_nonblocking_socket_raises(pair: Pair) -> None:
    pair.receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        portmsg.recv_batch(pair.receiver)


def test_batch_times_out_like_recv(pair: Pair) -> None:
    pair.receiver.settimeout(0.2)
    with pytest.raises(TimeoutError):
        portmsg.recv_batch(pair.receiver)


@pytest.mark.parametrize("count", [0, -1, 1025])
def test_batch_size_is_checked(pair: Pair, count: int) -> None:
    with pytest.raises(ValueError, match="max_messages"):
        portmsg.recv_batch(pair.receiver, count)


def test_batch_rejects_non_socket() -> None:
    with pytest.raises(TypeError, match="socket"):
        portmsg.recv_batch(3)  # type: ignore[arg-type]


# -- coalesced data is never cut by a default ----------------------------------------


def test_enable_without_features_leaves_coalescing_off(pair: Pair) -> None:
    on = pair.enable()
    assert Feature.SEGMENT_OFFLOAD not in on
    assert Feature.SEGMENT_OFFLOAD not in on.refused  # not refused: not asked for


def _gso_burst(pair: Pair, count: int, size: int) -> bytes:
    payload = b"".join(bytes([i]) * size for i in range(count))
    send_with_controls(pair.sender, payload, pair.address, [SegmentSize(size)])
    return payload


def test_batch_default_takes_a_whole_coalesced_burst(pair: Pair) -> None:
    pair.require(Feature.SEGMENT_OFFLOAD)
    payload = _gso_burst(pair, 4, 1200)
    (message,) = portmsg.recv_batch(pair.receiver)
    assert not message.truncated
    assert message.segments() == [payload[i : i + 1200] for i in range(0, 4800, 1200)]


def test_segments_of_a_cut_burst_are_only_whole_datagrams(pair: Pair) -> None:
    pair.require(Feature.SEGMENT_OFFLOAD)
    payload = _gso_burst(pair, 4, 1200)
    (message,) = portmsg.recv_batch(pair.receiver, bufsize=2048)
    assert message.truncated
    assert message.segments() == [payload[:1200]]  # the 848-byte piece is not a datagram


# -- bounded buffers, checked sizes ------------------------------------------------------


def test_batch_buffers_are_kept_per_size_class_and_bounded(pair: Pair) -> None:
    scratches = portmsg._api.IMPL.scratches
    for count in range(1, 40):
        pair.send(b"x")
        portmsg.recv_batch(pair.receiver, count)
    classes = scratches._batches
    assert set(classes) <= {1, 2, 4, 8, 16, 32, 64}
    assert all(len(free) <= 2 for free in classes.values())


@pytest.mark.parametrize("ancbufsize", [-1, -100])
def test_batch_checks_the_control_size_like_recv(pair: Pair, ancbufsize: int) -> None:
    pair.send(b"kept")
    with pytest.raises(ValueError, match="invalid ancillary data buffer length"):
        portmsg.recv_batch(pair.receiver, ancbufsize=ancbufsize)
    assert portmsg.recv(pair.receiver).data == b"kept"


def test_batch_equals_one_receive_at_a_time_for_any_mix_of_senders_and_controls(pair: Pair) -> None:
    """The batch path (C-built index tables, one struct call for the payloads) gives exactly what recv gives.

    Sizes from 0 to past bufsize, batch sizes from 1 to 64, tables that persist from call to call.
    """
    with mixed_senders(pair) as order:
        counts = iter([32, 7, 1, 64, 3] * 1000)
        for start in range(0, len(order), 100):
            chunk = order[start : start + 100]
            send_mixed(pair, chunk, start)
            batched: list[portmsg.Message] = []
            while len(batched) < len(chunk):
                batched.extend(portmsg.recv_batch(pair.receiver, next(counts), 200))
            send_mixed(pair, chunk, start)
            single = [portmsg.recv(pair.receiver, 200) for _ in chunk]
            assert batched == single
            assert [m.address for m in batched] == [sock.getsockname() for sock in chunk]
            assert [len(m.data) for m in batched] == [
                min((i * 37) % 260, 200) for i in range(start, start + len(chunk))
            ]


@pytest.mark.skipif(not hasattr(socket.socket, "recvmsg"), reason="the stdlib has no recvmsg here to compare with")
def test_recvmsg_equals_the_stdlibs_for_any_mix_of_senders_and_controls(pair: Pair) -> None:
    """recvmsg's reuse of the datagram before's objects (pm_recv1's repeat) never shows: the stdlib's results."""
    space = portmsg.CMSG_SPACE(64)
    with mixed_senders(pair) as order:
        for start in range(0, len(order), 100):
            chunk = order[start : start + 100]
            send_mixed(pair, chunk, start)
            ours = [portmsg.recvmsg(pair.receiver, 200, space) for _ in chunk]
            send_mixed(pair, chunk, start)
            theirs = [pair.receiver.recvmsg(200, space) for _ in chunk]
            assert ours == theirs
