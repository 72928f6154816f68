"""Sending behaviour, the same on every backend."""

from __future__ import annotations

import errno
import socket
import sys
from ipaddress import ip_address

import pytest
from helpers import LOOPBACK, Pair, dual_stack_socket, require, send_with_controls, udp_pair

import portmsg
from portmsg import ECN, Feature, HopLimit, RawControl, SegmentSize, Timestamp, TrafficClass


def test_send_returns_bytes_sent(pair: Pair) -> None:
    assert portmsg.send(pair.sender, b"hello", pair.address) == 5
    assert portmsg.recv(pair.receiver).data == b"hello"


def test_sendmsg_gathers_buffers(pair: Pair) -> None:
    assert portmsg.sendmsg(pair.sender, [b"ab", bytearray(b"cd"), memoryview(b"ef")], [], 0, pair.address) == 6
    assert portmsg.recv(pair.receiver).data == b"abcdef"


def test_send_on_connected_socket_needs_no_address(pair: Pair) -> None:
    pair.sender.connect(pair.address)
    assert portmsg.send(pair.sender, b"conn") == 4
    assert portmsg.recv(pair.receiver).data == b"conn"


def test_send_accepts_host_names() -> None:
    family = socket.AF_INET  # 'localhost' is IPv4 everywhere; its IPv6 naming varies by host
    with socket.socket(family, socket.SOCK_DGRAM) as receiver, socket.socket(family, socket.SOCK_DGRAM) as sender:
        receiver.bind((LOOPBACK[family], 0))
        receiver.settimeout(5)
        portmsg.send(sender, b"named", ("localhost", receiver.getsockname()[1]))
        assert portmsg.recv(receiver).data == b"named"


def test_send_hop_limit_control(pair: Pair) -> None:
    pair.require(Feature.HOP_LIMIT)
    send_with_controls(pair.sender, b"ttl", pair.address, [HopLimit(17)])
    message = portmsg.recv(pair.receiver)
    assert message.hop_limit == HopLimit(17)


def test_reply_leaves_from_the_address_it_arrived_on() -> None:
    """A server on 0.0.0.0 answers from 127.0.0.2 when asked at 127.0.0.2."""
    with udp_pair(socket.AF_INET, bind="0.0.0.0") as pair:
        server, client = pair.receiver, pair.sender
        pair.require(Feature.PACKET_INFO)
        port = pair.address[1]
        for destination in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
            client.sendto(b"question", (destination, port))
            request = portmsg.recv(server)
            send_with_controls(server, b"answer", request.address, request.reply_controls())
            data, source = client.recvfrom(100)
            assert (data, source) == (b"answer", (destination, port))


@pytest.mark.parametrize("destination", ["127.0.0.1", "127.0.0.2", "::1"])
def test_reply_from_dual_stack_socket(destination: str) -> None:
    server = dual_stack_socket()
    family = socket.AF_INET6 if ":" in destination else socket.AF_INET
    with server, socket.socket(family, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        require(server, Feature.PACKET_INFO)
        port = server.getsockname()[1]
        client.sendto(b"q", (destination, port))
        request = portmsg.recv(server)
        assert request.packet_info is not None
        assert request.packet_info.address == ip_address(destination)
        send_with_controls(server, b"a", request.address, request.reply_controls())
        data, source = client.recvfrom(10)
        assert (data, source[:2]) == (b"a", (destination, port))


@pytest.mark.parametrize("ecn", [ECN.ECT0, ECN.ECT1, ECN.CE])
def test_ecn_marked_on_send_arrives(pair: Pair, ecn: ECN) -> None:
    pair.require(Feature.TRAFFIC_CLASS)
    send_with_controls(pair.sender, b"ecn", pair.address, [TrafficClass(int(ecn))])
    assert portmsg.recv(pair.receiver).ecn is ecn


def test_gso_burst_without_gro_arrives_as_separate_datagrams(pair: Pair) -> None:
    if not hasattr(portmsg.native, "UDP_SEGMENT"):
        pytest.skip(f"no UDP_SEGMENT (GSO) on {sys.platform}")
    payload = b"x" * 250
    send_with_controls(pair.sender, payload, pair.address, [SegmentSize(100)])
    sizes = [len(portmsg.recv(pair.receiver).data) for _ in range(3)]
    assert sizes == [100, 100, 50]


def test_send_batch_sends_each_with_its_own_controls(pair: Pair) -> None:
    pair.require(Feature.HOP_LIMIT)
    datagrams = [(b"%d" % i, pair.address, [HopLimit(10 + i)]) for i in range(8)]
    datagrams.append((b"plain", pair.address))  # type: ignore[arg-type]
    try:
        assert portmsg.send_batch(pair.sender, datagrams) == 9
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            pytest.skip(str(exc))
        raise
    got = [portmsg.recv(pair.receiver) for _ in range(9)]
    assert [m.data for m in got] == [b"%d" % i for i in range(8)] + [b"plain"]
    assert [m.hop_limit for m in got[:8]] == [HopLimit(10 + i) for i in range(8)]


def test_send_batch_on_connected_socket(pair: Pair) -> None:
    pair.sender.connect(pair.address)
    assert portmsg.send_batch(pair.sender, [(b"a", None), (b"b", None)]) == 2
    assert [portmsg.recv(pair.receiver).data for _ in range(2)] == [b"a", b"b"]


def test_send_batch_rejects_bad_items_and_sends_nothing(pair: Pair) -> None:
    with pytest.raises(TypeError, match="datagrams"):
        portmsg.send_batch(pair.sender, [(b"ok", pair.address), b"not a tuple"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="0-255"):
        portmsg.send_batch(pair.sender, [(b"ok", pair.address), (b"bad", pair.address, [HopLimit(999)])])
    with pytest.raises(ValueError, match="datagrams"):
        portmsg.send_batch(pair.sender, [])
    pair.receiver.settimeout(0.2)
    with pytest.raises(TimeoutError):
        portmsg.recv(pair.receiver)


def test_unsendable_control_sends_nothing(pair: Pair) -> None:
    with pytest.raises(ValueError, match="receive-only"):
        portmsg.send(pair.sender, b"never", pair.address, controls=[Timestamp(1)])
    pair.receiver.settimeout(0.2)
    with pytest.raises(TimeoutError):
        portmsg.recv(pair.receiver)


def test_raw_control_is_passed_through(pair: Pair) -> None:
    pair.require(Feature.HOP_LIMIT)
    ((level, kind, data),) = portmsg.encode([HopLimit(21)], pair.family)
    send_with_controls(pair.sender, b"raw", pair.address, [RawControl(level, kind, data)])
    message = portmsg.recv(pair.receiver)
    assert message.data == b"raw"
    assert message.hop_limit == HopLimit(21)


def test_send_on_a_closed_socket_raises_as_the_stdlib(pair: Pair) -> None:
    pair.sender.close()
    with pytest.raises(OSError) as ours:
        portmsg.send(pair.sender, b"x", pair.address)
    with pytest.raises(OSError) as stdlib:
        pair.sender.sendto(b"x", pair.address)
    assert type(ours.value) is type(stdlib.value)
    assert ours.value.errno == stdlib.value.errno
    assert getattr(ours.value, "winerror", None) == getattr(stdlib.value, "winerror", None)
