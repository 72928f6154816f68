"""recv_batch: the same on every backend (recvmmsg on Linux, a loop elsewhere)."""

from __future__ import annotations

import socket
import time

import pytest
from helpers import LOOPBACK, Pair, send_option

import portmsg
from portmsg import Feature, MsgFlag, TrafficClass


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
