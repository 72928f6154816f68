"""Sending behaviour, the same on every backend."""

from __future__ import annotations

import errno
import socket
import sys
from ipaddress import ip_address

import pytest
from helpers import FAMILIES, LOOPBACK, Pair, dual_stack_socket, require, send_with_controls, udp_pair

import portmsg
from portmsg import (
    ECN,
    Credentials,
    Feature,
    FileDescriptors,
    HopLimit,
    PacketInfo,
    RawControl,
    SegmentSize,
    Timestamp,
    TrafficClass,
    native,
)


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
    try:
        socket.getaddrinfo("localhost", None, family)
    except socket.gaierror as exc:
        pytest.skip(f"this host cannot resolve 'localhost' (no /etc/hosts entry?): {exc}")
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


# -- a control either takes effect or nothing is sent -----------------------------------


def _nothing_arrives(receiver: socket.socket) -> None:
    receiver.settimeout(0.2)
    with pytest.raises(TimeoutError):
        portmsg.recv(receiver)


@pytest.mark.parametrize(
    "control",
    [
        PacketInfo(ip_address("::1"), 0),
        FileDescriptors((0,)),
        Credentials(1, 0, 0),
    ],
    ids=["ipv6-packet-info", "descriptors", "credentials"],
)
def test_a_control_an_ipv4_socket_cannot_carry_is_refused(control: portmsg.Control) -> None:
    with udp_pair(socket.AF_INET) as pair:
        with pytest.raises(ValueError, match=r"cannot be sent on an AF_INET socket.*nothing was sent"):
            portmsg.send(pair.sender, b"x", pair.address, controls=[control])
        _nothing_arrives(pair.receiver)


def test_encode_refuses_an_ipv6_source_for_an_ipv4_socket() -> None:
    with pytest.raises(ValueError, match="AF_INET socket"):
        portmsg.encode([PacketInfo(ip_address("::1"), 0)], socket.AF_INET)


def test_a_v4_mapped_source_on_an_ipv4_socket_goes_out_as_ipv4() -> None:
    with udp_pair(socket.AF_INET, bind="0.0.0.0") as pair:
        pair.require(Feature.PACKET_INFO)
        ((level, kind, _),) = portmsg.encode([PacketInfo(ip_address("::ffff:127.0.0.1"), 0)], socket.AF_INET)
        assert (level, kind) == (native.IPPROTO_IP, native.IP_PKTINFO)


def test_an_ipv4_source_to_an_ipv6_destination_is_refused_with_a_reason() -> None:
    if socket.AF_INET6 not in FAMILIES:
        pytest.skip("IPv6 is not available on this host")
    with udp_pair(socket.AF_INET6) as pair:
        with pytest.raises(ValueError, match="AF_INET6 socket to an IPv6 destination"):
            portmsg.send(pair.sender, b"x", pair.address, controls=[PacketInfo(ip_address("127.0.0.1"), 0)])
        _nothing_arrives(pair.receiver)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX") or portmsg.BACKEND != "posix", reason="AF_UNIX datagrams: POSIX")
def test_ip_controls_on_a_unix_socket_are_refused() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        for control in (PacketInfo(ip_address("127.0.0.1"), 0), HopLimit(3), TrafficClass(2), SegmentSize(100)):
            with pytest.raises(ValueError, match="AF_UNIX socket"):
                portmsg.send(a, b"x", controls=[control])
        _nothing_arrives(b)


@pytest.mark.parametrize("control", [TrafficClass(int(ECN.ECT0)), HopLimit(7)], ids=["traffic-class", "hop-limit"])
def test_dual_stack_socket_marks_an_ipv4_peer_with_the_ipv4_forms(control: portmsg.Control) -> None:
    """Linux sends to a v4-mapped peer down the IPv4 path, which ignores IPV6_TCLASS / IPV6_HOPLIMIT."""
    sender = dual_stack_socket()
    with sender, udp_pair(socket.AF_INET) as pair:
        feature = Feature.TRAFFIC_CLASS if isinstance(control, TrafficClass) else Feature.HOP_LIMIT
        pair.require(feature)
        send_with_controls(sender, b"x", ("::ffff:127.0.0.1", pair.address[1]), [control])
        message = portmsg.recv(pair.receiver)
        if isinstance(control, TrafficClass):
            assert message.traffic_class == control
        else:
            assert message.hop_limit == control


def test_connected_dual_stack_socket_uses_its_peer_for_the_form() -> None:
    sender = dual_stack_socket()
    with sender, udp_pair(socket.AF_INET) as pair:
        pair.require(Feature.HOP_LIMIT)
        sender.connect(("::ffff:127.0.0.1", pair.address[1]))
        send_with_controls(sender, b"x", None, [HopLimit(9)])
        assert portmsg.recv(pair.receiver).hop_limit == HopLimit(9)


@pytest.mark.parametrize(("level", "kind"), [(0, 2**32 + 2), (2**32, 2), (-(2**31) - 1, 2)])
def test_control_level_and_type_outside_a_c_int_overflow_as_the_stdlib(level: int, kind: int) -> None:
    with udp_pair(socket.AF_INET) as pair:
        with pytest.raises(OverflowError, match="signed integer"):
            portmsg.sendmsg(pair.sender, [b"x"], [(level, kind, b"\x07\x00\x00\x00")], 0, pair.address)
        _nothing_arrives(pair.receiver)


# -- replying to a broadcast ---------------------------------------------------------------


def test_reply_to_a_broadcast_leaves_from_the_receiving_interface() -> None:
    """127.255.255.255 is loopback's broadcast address: a reply must come from a local unicast address."""
    with udp_pair(socket.AF_INET, bind="0.0.0.0") as pair:
        pair.require(Feature.PACKET_INFO)
        server, client = pair.receiver, pair.sender
        client.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        port = pair.address[1]
        try:
            client.sendto(b"who is there", ("127.255.255.255", port))
        except OSError as exc:
            pytest.skip(f"{portmsg.PLATFORM} does not send to 127.255.255.255: {exc}")
        request = portmsg.recv(server)
        assert request.packet_info is not None
        if portmsg.PLATFORM.startswith("wine") and not request.flags & portmsg.MsgFlag.BCAST:
            pytest.skip(
                f"{portmsg.PLATFORM} sets no MSG_BCAST (and sends no controls): only a real Windows host shows this"
            )
        (reply,) = request.reply_controls()
        assert not reply.address.is_multicast
        assert reply.address != ip_address("127.255.255.255")
        send_with_controls(server, b"here", request.address, [reply])
        data, source = client.recvfrom(100)
        assert data == b"here"
        assert ip_address(source[0]).is_loopback
        assert source[0] != "127.255.255.255"
        # and the next, unicast request is answered from the address asked
        client.sendto(b"again", ("127.0.0.1", port))
        request = portmsg.recv(server)
        send_with_controls(server, b"yes", request.address, request.reply_controls())
        assert client.recvfrom(100) == (b"yes", ("127.0.0.1", port))
