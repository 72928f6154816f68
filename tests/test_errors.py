"""Bad arguments: the stdlib's exception classes, messages that name the argument, nothing lost."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address

import pytest
from helpers import Pair

import portmsg
from portmsg import (
    Credentials,
    Feature,
    FileDescriptors,
    HopLimit,
    PacketInfo,
    RawControl,
    SegmentSize,
    Timestamp,
    TrafficClass,
)


@pytest.mark.parametrize(
    "call",
    [
        lambda: portmsg.recv("sock"),  # type: ignore[arg-type]
        lambda: portmsg.recv_batch(None),  # type: ignore[arg-type]
        lambda: portmsg.recvmsg(3, 10),  # type: ignore[arg-type]
        lambda: portmsg.recvmsg_into(b"", [bytearray(1)]),  # type: ignore[arg-type]
        lambda: portmsg.sendmsg(object(), [b"x"]),  # type: ignore[arg-type]
        lambda: portmsg.send(1.5, b"x"),  # type: ignore[arg-type]
        lambda: portmsg.enable("sock"),  # type: ignore[arg-type]
        lambda: portmsg.disable_udp_resets(7),  # type: ignore[arg-type]
    ],
    ids=["recv", "recv_batch", "recvmsg", "recvmsg_into", "sendmsg", "send", "enable", "disable_udp_resets"],
)
def test_non_socket_is_a_type_error_naming_the_socket(call) -> None:
    with pytest.raises(TypeError, match="socket"):
        call()


def test_closed_socket_everywhere(pair: Pair) -> None:
    pair.receiver.close()
    with pytest.raises(OSError) as stdlib:
        pair.receiver.recvfrom(1)
    for call in (
        lambda: portmsg.recv(pair.receiver),
        lambda: portmsg.recv_batch(pair.receiver),
        lambda: portmsg.recvmsg(pair.receiver, 1),
        lambda: portmsg.recvmsg_into(pair.receiver, [bytearray(1)]),
        lambda: portmsg.send(pair.receiver, b"x", pair.address),
    ):
        with pytest.raises(OSError) as ours:
            call()
        assert type(ours.value) is type(stdlib.value)
        assert ours.value.errno == stdlib.value.errno


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"bufsize": -1}, "negative buffer size"), ({"ancbufsize": -1}, "ancillary data buffer length")],
)
def test_recv_rejects_negative_sizes(pair: Pair, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        portmsg.recv(pair.receiver, **kwargs)


def test_recv_rejects_wrong_types(pair: Pair) -> None:
    with pytest.raises(TypeError):
        portmsg.recv(pair.receiver, "big")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        portmsg.recv_batch(pair.receiver, "8")  # type: ignore[arg-type]


def test_recv_batch_rejects_huge_and_negative(pair: Pair) -> None:
    with pytest.raises(ValueError, match="max_messages"):
        portmsg.recv_batch(pair.receiver, 10**6)
    with pytest.raises(ValueError, match="negative buffer size"):
        portmsg.recv_batch(pair.receiver, 4, -5)


def test_recvmsg_into_rejects_read_only_buffer(pair: Pair) -> None:
    with pytest.raises(TypeError, match="read-write"):
        portmsg.recvmsg_into(pair.receiver, [b"immutable"])


def test_bufsize_beyond_ssize_t_is_an_overflow_error(pair: Pair) -> None:
    with pytest.raises(OverflowError, match="index-sized integer"):
        portmsg.recvmsg(pair.receiver, 2**63)


def test_a_failed_call_loses_no_datagram(pair: Pair) -> None:
    """Argument errors are raised before the receive: the datagram stays queued."""
    pair.send(b"keep me")
    with pytest.raises(ValueError):
        portmsg.recvmsg(pair.receiver, -1)
    with pytest.raises(TypeError):
        portmsg.recvmsg_into(pair.receiver, [b"ro"])
    assert portmsg.recv(pair.receiver).data == b"keep me"


def test_enable_rejects_non_features(pair: Pair) -> None:
    with pytest.raises(TypeError, match="Feature"):
        portmsg.enable(pair.receiver, "PACKET_INFO")  # type: ignore[arg-type]


def test_enable_claims_nothing_on_a_tcp_socket_and_says_why() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        on = portmsg.enable(tcp, *Feature)
        assert on == frozenset()
        assert set(on.refused) == set(Feature)
        assert on.refused[Feature.PACKET_INFO] == "does not apply to an AF_INET stream socket"


def test_level2_receives_refuse_a_tcp_socket_before_reading(pair: Pair) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            server, _ = listener.accept()
            with server:
                client.sendall(b"aaaabbbb")
                server.settimeout(5)
                for call in (
                    lambda: portmsg.recv(server),
                    lambda: portmsg.recv_batch(server, 4, 4),
                    lambda: portmsg.recv_into(server, bytearray(4)),
                ):
                    with pytest.raises(TypeError, match="datagram sockets, not a TCP"):
                        call()
                # Level 1 keeps the stdlib's behaviour: a stream can be read with recvmsg.
                data, _, _, _ = portmsg.recvmsg(server, 100)
                assert data == b"aaaabbbb"


def test_enable_on_a_closed_socket_raises_as_setsockopt_does(pair: Pair) -> None:
    pair.receiver.close()
    with pytest.raises(OSError) as ours:
        portmsg.enable(pair.receiver, Feature.PACKET_INFO)
    with pytest.raises(OSError) as stdlib:
        pair.receiver.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    assert type(ours.value) is type(stdlib.value)
    assert ours.value.errno == stdlib.value.errno


def test_enable_says_why_a_feature_is_off(pair: Pair) -> None:
    on = portmsg.enable(pair.receiver, *Feature)
    assert set(on) | set(on.refused) == set(Feature)
    assert not set(on) & set(on.refused)
    assert on.refused[Feature.CREDENTIALS].startswith("does not apply to an AF_INET")
    for feature, why in on.refused.items():
        assert why, feature


def test_bad_controls_are_refused_when_built() -> None:
    for build, error, match in (
        (lambda: HopLimit(300), ValueError, "HopLimit.value must be 0-255, not 300"),
        (lambda: TrafficClass(-1), ValueError, "TrafficClass.value must be 0-255, not -1"),
        (lambda: HopLimit("64"), TypeError, "HopLimit.value must be an int, not str"),  # type: ignore[arg-type]
        (lambda: PacketInfo("127.0.0.1", 0), TypeError, "PacketInfo.address must be an IPv4Address"),  # type: ignore[arg-type]
        (lambda: PacketInfo(IPv4Address("127.0.0.1"), -1), ValueError, "PacketInfo.interface must be 0-"),
        (lambda: FileDescriptors(5), TypeError, "FileDescriptors.fds must be an iterable of int, not int"),  # type: ignore[arg-type]
        (lambda: FileDescriptors(("a",)), TypeError, "FileDescriptors.fds item must be an int, not str"),  # type: ignore[arg-type]
        (lambda: SegmentSize(-5), ValueError, "SegmentSize.value must be 1-65535"),
        (lambda: SegmentSize(0), ValueError, "SegmentSize.value must be 1-65535"),
        (lambda: SegmentSize(70000), ValueError, "SegmentSize.value must be 1-65535"),
        (lambda: RawControl("a", 1, b""), TypeError, "RawControl.level must be an int, not str"),  # type: ignore[arg-type]
        (lambda: RawControl(0, 2**31, b""), ValueError, "RawControl.type must be"),
        (lambda: RawControl(0, 1, "text"), TypeError, "RawControl.data must be bytes-like, not str"),  # type: ignore[arg-type]
        (lambda: Timestamp(1.5), TypeError, "Timestamp.ns must be an int, not float"),  # type: ignore[arg-type]
        (lambda: Credentials(1, -1, 0), ValueError, "Credentials.uid must be 0-"),
    ):
        with pytest.raises(error, match=match):
            build()


def test_send_rejects_bad_controls_before_sending(pair: Pair) -> None:
    for controls, error in ((["raw"], TypeError), ([Timestamp(1)], ValueError)):
        with pytest.raises(error):
            portmsg.send(pair.sender, b"no", pair.address, controls=controls)  # type: ignore[arg-type]
    pair.receiver.settimeout(0.2)
    with pytest.raises(TimeoutError):
        portmsg.recv(pair.receiver)


def test_sendmsg_bad_address_names_it(pair: Pair) -> None:
    with pytest.raises(TypeError, match="address must be tuple"):
        portmsg.sendmsg(pair.sender, [b"x"], [], 0, "127.0.0.1")
    with pytest.raises(OverflowError, match="port must be 0-65535"):
        portmsg.sendmsg(pair.sender, [b"x"], [], 0, (pair.address[0], -1))


@pytest.mark.parametrize("items", [[1, 2, 3], ["abc"], [(1, 2)], [(1, 2, 3, 4)], [(1, 2, 3)], [("a", 2, b"")]])
def test_normalize_rejects_items_that_are_not_native_controls(items: list) -> None:
    with pytest.raises(TypeError, match=r"normalize\(\) takes \(level, type, data\) tuples"):
        portmsg.normalize(items)


def test_enable_checks_every_argument_before_setting_any_option() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(TypeError, match="expected a Feature"):
            portmsg.enable(sock, Feature.PACKET_INFO, "bogus")  # type: ignore[arg-type]
        try:
            value = sock.getsockopt(socket.IPPROTO_IP, portmsg.native.IP_PKTINFO)
        except OSError as exc:
            pytest.skip(f"this platform cannot read IP_PKTINFO back: {exc}")
        assert value == 0  # nothing was switched on


def test_cmsg_sizes_beyond_a_ssize_t_raise_the_stdlibs_words() -> None:
    for func in (portmsg.CMSG_LEN, portmsg.CMSG_SPACE):
        with pytest.raises(OverflowError, match="too large to convert to C ssize_t"):
            func(2**63)
        with pytest.raises(OverflowError, match="argument out of range"):
            func(-1)


def test_an_empty_flag_set_reads_0() -> None:
    assert str(portmsg.MsgFlag(0)) == "0"
    assert str(portmsg.MsgFlag.TRUNC | portmsg.MsgFlag.CTRUNC) == "MsgFlag.TRUNC|CTRUNC"
