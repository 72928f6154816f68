"""Sending behaviour, the same on every backend."""

from __future__ import annotations

import socket
from ipaddress import ip_address

import pytest
from helpers import LOOPBACK, Pair, dual_stack_socket, send_with_controls

import portmsg
from portmsg import Feature, HopLimit, PacketInfo, RawControl, Timestamp


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
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client,
    ):
        server.bind(("0.0.0.0", 0))
        server.settimeout(5)
        client.settimeout(5)
        if Feature.PACKET_INFO not in portmsg.enable(server, Feature.PACKET_INFO):
            pytest.skip(f"portmsg.enable() reports PACKET_INFO unavailable on {portmsg.BACKEND}")
        port = server.getsockname()[1]
        for destination in ("127.0.0.1", "127.0.0.2"):
            client.sendto(b"question", (destination, port))
            request = portmsg.recv(server)
            assert request.packet_info is not None
            send_with_controls(server, b"answer", request.address, [PacketInfo(request.packet_info.address, 0)])
            data, source = client.recvfrom(100)
            assert (data, source) == (b"answer", (destination, port))


def test_reply_from_dual_stack_socket() -> None:
    server = dual_stack_socket()
    with server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(5)
        if Feature.PACKET_INFO not in portmsg.enable(server, Feature.PACKET_INFO):
            pytest.skip(f"portmsg.enable() reports PACKET_INFO unavailable on {portmsg.BACKEND}")
        port = server.getsockname()[1]
        client.sendto(b"q", ("127.0.0.2", port))
        request = portmsg.recv(server)
        assert request.packet_info is not None
        assert request.packet_info.address == ip_address("127.0.0.2")
        # The reply goes to a v4-mapped address from a v6 socket, so it needs the IPv6 form.
        source = ip_address("::ffff:" + str(request.packet_info.address))
        send_with_controls(server, b"a", request.address, [PacketInfo(source, 0)])
        assert client.recvfrom(10) == (b"a", ("127.0.0.2", port))


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


def test_send_nonblocking_and_closed(pair: Pair) -> None:
    pair.sender.close()
    with pytest.raises(OSError) as ours:
        portmsg.send(pair.sender, b"x", pair.address)
    with pytest.raises(OSError) as stdlib:
        pair.sender.sendto(b"x", pair.address)
    assert type(ours.value) is type(stdlib.value)
