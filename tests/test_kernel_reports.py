"""What else the kernel says about a datagram: queued errors, drops, the original destination, BCAST/MCAST.

Behaviour tests, on every backend: each asks `enable()` first and, where the
platform lacks the feature, checks that the library says so (refused, with a
reason; NotImplementedError for the error queue) instead of skipping quietly.
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import socket
import struct
import subprocess
import sys
import time
from ipaddress import IPv4Address, ip_address
from pathlib import Path

import pytest
from helpers import FAMILIES, LOOPBACK, TIMEOUT, dual_stack_socket, require, udp_pair
from hypothesis import given
from hypothesis import strategies as st

import portmsg
from portmsg import (
    Clock,
    Drops,
    ErrorOrigin,
    Feature,
    MsgFlag,
    OriginalDestination,
    PacketInfo,
    QueuedError,
    RawControl,
    Timestamp,
    native,
)
from portmsg._backend import IMPL
from portmsg._normalize import Normalizer


def _has_error_queue() -> bool:
    """What the library says: recv_error() raises NotImplementedError where there is no error queue."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            portmsg.recv_error(sock)
        except NotImplementedError:
            return False
    return True


HAS_ERRQUEUE = _has_error_queue()


def _closed_port(family: int) -> int:
    with socket.socket(family, socket.SOCK_DGRAM) as gone:
        gone.bind((LOOPBACK[family], 0))
        return int(gone.getsockname()[1])


def _wait_for_error(sock: socket.socket) -> portmsg.Message:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        message = portmsg.recv_error(sock)
        if message is not None:
            return message
        time.sleep(0.01)
    pytest.fail("no error was queued")


# -- queued errors (ERRORS, recv_error) ------------------------------------------------------


def test_a_platform_without_an_error_queue_says_so() -> None:
    """Windows and the BSDs have no socket error queue: enable() refuses ERRORS and recv_error() raises."""
    if HAS_ERRQUEUE:
        pytest.skip("this platform has an error queue (Linux): the tests below cover it")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        on = portmsg.enable(sock, Feature.ERRORS)
        assert Feature.ERRORS not in on
        assert "IP_RECVERR" in on.refused[Feature.ERRORS]
        with pytest.raises(NotImplementedError, match="no socket error queue"):
            portmsg.recv_error(sock)


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: socket.AddressFamily(f).name)
def test_an_icmp_port_unreachable_comes_back_with_its_datagram(family: int) -> None:
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.bind((LOOPBACK[family], 0))
        require(sock, Feature.ERRORS)
        port = _closed_port(family)
        sock.sendto(b"to nobody", (LOOPBACK[family], port))
        message = _wait_for_error(sock)
        assert message.data == b"to nobody"
        assert message.address[:2] == (LOOPBACK[family], port)
        assert MsgFlag.ERRQUEUE in message.flags
        v4 = family == socket.AF_INET
        assert message.error == QueuedError(
            errno=errno.ECONNREFUSED,
            origin=ErrorOrigin.ICMP if v4 else ErrorOrigin.ICMP6,
            type=3 if v4 else 1,  # destination unreachable
            code=3 if v4 else 4,  # port unreachable
            info=0,
            data=0,
            offender=ip_address(LOOPBACK[family]),
        )
        assert message.error.strerror == "Connection refused"
        assert portmsg.recv_error(sock) is None  # taken: the queue is empty, and the socket error cleared
        sock.settimeout(0)
        with pytest.raises(BlockingIOError):
            portmsg.recv(sock)


def test_an_ipv4_error_on_a_dual_stack_socket_is_typed_too() -> None:
    with dual_stack_socket() as sock:
        require(sock, Feature.ERRORS)
        sock.sendto(b"v4", ("::ffff:127.0.0.1", _closed_port(socket.AF_INET)))
        error = _wait_for_error(sock).error
        assert error is not None
        assert (error.errno, error.origin, error.offender) == (
            errno.ECONNREFUSED,
            ErrorOrigin.ICMP,
            IPv4Address("127.0.0.1"),
        )


@pytest.mark.parametrize("timeout", [None, 0.0, 5.0], ids=["blocking", "non-blocking", "timeout"])
def test_recv_error_never_waits(timeout: float | None) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        require(sock, Feature.ERRORS)
        sock.settimeout(timeout)
        start = time.monotonic()
        assert portmsg.recv_error(sock) is None
        assert time.monotonic() - start < 1.0  # a wait would be 5 s or for ever


def test_without_recv_error_the_next_call_raises_the_error_once() -> None:
    """Linux with IP_RECVERR: an unconnected socket, too, hears the error on its next call."""
    with udp_pair(socket.AF_INET) as pair:
        require(pair.receiver, Feature.ERRORS)
        pair.receiver.sendto(b"x", ("127.0.0.1", _closed_port(socket.AF_INET)))
        time.sleep(0.1)
        with pytest.raises(ConnectionRefusedError):
            portmsg.recv(pair.receiver)
        pair.send(b"after")
        assert portmsg.recv(pair.receiver).data == b"after"


@pytest.mark.skipif(
    not (HAS_ERRQUEUE and hasattr(socket.socket, "recvmsg")),
    reason="needs the stdlib's recvmsg and an error queue (Linux); the refusal elsewhere is tested above",
)
def test_level1_reads_the_error_queue_exactly_as_the_stdlib() -> None:
    """Differential: sock.recvmsg(..., MSG_ERRQUEUE) and portmsg.recvmsg return the same tuple."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.setsockopt(socket.IPPROTO_IP, native.IP_RECVERR, 1)
        port = _closed_port(socket.AF_INET)
        sock.sendto(b"twice", ("127.0.0.1", port))
        time.sleep(0.05)
        theirs = sock.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
        sock.sendto(b"twice", ("127.0.0.1", port))  # the same error again, for portmsg
        time.sleep(0.05)
        ours = portmsg.recvmsg(sock, 2048, 512, native.MSG_ERRQUEUE)
        assert ours == theirs
        assert theirs[1]  # the extended error itself, not an empty list
        with pytest.raises(BlockingIOError):
            sock.recvmsg(2048, 512, socket.MSG_ERRQUEUE)
        with pytest.raises(BlockingIOError):
            portmsg.recvmsg(sock, 2048, 512, native.MSG_ERRQUEUE)


_PMTU_SCRIPT = """
import socket, sys, portmsg
from portmsg import Feature, native
family = int(sys.argv[1])
host = "127.0.0.1" if family == socket.AF_INET else "::1"
level, option, value = (
    (socket.IPPROTO_IP, native.IP_MTU_DISCOVER, native.IP_PMTUDISC_DO)
    if family == socket.AF_INET
    else (socket.IPPROTO_IPV6, native.IPV6_MTU_DISCOVER, native.IPV6_PMTUDISC_DO)
)
with socket.socket(family, socket.SOCK_DGRAM) as sock:
    sock.bind((host, 0))
    assert Feature.ERRORS in portmsg.enable(sock, Feature.ERRORS)
    sock.setsockopt(level, option, value)
    try:
        sock.sendto(b"x" * 2000, (host, 9))
    except OSError as exc:
        print("send", exc.errno)
    error = portmsg.recv_error(sock).error
    print("error", error.errno, error.origin.name, error.info)
"""


@pytest.mark.skipif(not HAS_ERRQUEUE, reason="the error queue is Linux's")
@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: socket.AddressFamily(f).name)
def test_a_datagram_over_the_path_mtu_reports_the_mtu(family: int, tmp_path: Path) -> None:
    """In a network namespace of our own whose loopback has a 1280-byte MTU (needs unshare and ip)."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        pytest.skip("needs unshare(1) and ip(8) for a network namespace of its own")
    setup = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, check=False)
    if setup.returncode:
        pytest.skip(f"cannot make a network namespace here: {setup.stderr.strip()}")
    shell = 'ip link set lo up mtu 1280 && exec "$0" -c "$1" "$2"'
    run = subprocess.run(
        ["unshare", "-n", "sh", "-c", shell, sys.executable, _PMTU_SCRIPT, str(int(family))],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,  # python -c puts its directory first on sys.path: never a source tree
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == [f"send {errno.EMSGSIZE}", f"error {errno.EMSGSIZE} LOCAL 1280"]


# -- drops (DROPS) --------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: socket.AddressFamily(f).name)
def test_drops_count_what_a_full_buffer_lost(family: int) -> None:
    with udp_pair(family) as pair:
        require(pair.receiver, Feature.DROPS)
        assert pair.roundtrip(b"first").drops is None  # nothing dropped yet: no control at all
        pair.receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        for _ in range(64):
            pair.send(b"o" * 512)
        pair.receiver.settimeout(0)
        kept = 0
        while True:
            try:
                portmsg.recv(pair.receiver)
            except BlockingIOError:
                break
            kept += 1
        pair.receiver.settimeout(TIMEOUT)
        after = pair.roundtrip(b"after")
        assert after.drops == Drops(64 - kept)
        assert Feature.DROPS not in portmsg.enable(pair.receiver).missing(pair.roundtrip())


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: socket.AddressFamily(f).name)
def test_dropped_counts_now_what_queued_datagrams_report_only_later(family: int) -> None:
    with udp_pair(family) as pair:
        if not hasattr(portmsg.native, "SO_MEMINFO"):
            with pytest.raises(NotImplementedError, match="no per-socket drop count") as refused:
                portmsg.dropped(pair.receiver)
            pytest.skip(f"portmsg reports it: {refused.value}")
        before = portmsg.dropped(pair.receiver)
        require(pair.receiver, Feature.DROPS)
        assert before == 0
        pair.receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
        for _ in range(64):
            pair.send(b"o" * 512)
        lost = portmsg.dropped(pair.receiver)
        assert lost > 0
        queued = portmsg.recv(pair.receiver)  # queued before the drops: it cannot know of them
        assert queued.drops is None
        pair.receiver.settimeout(0)
        with contextlib.suppress(BlockingIOError):
            while True:
                portmsg.recv(pair.receiver)
        pair.receiver.settimeout(TIMEOUT)
        assert pair.roundtrip(b"after").drops == Drops(lost) == Drops(portmsg.dropped(pair.receiver))


def test_drops_do_not_apply_to_unix_datagram_sockets() -> None:
    if not hasattr(socket, "AF_UNIX") or portmsg.BACKEND != "posix":
        pytest.skip("no Unix datagram sockets on this backend")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        on = portmsg.enable(sock, Feature.DROPS)
        assert on.refused == {Feature.DROPS: "does not apply to an AF_UNIX datagram socket"}


# -- original destination (ORIGINAL_DESTINATION) ---------------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: socket.AddressFamily(f).name)
def test_the_original_destination_is_the_bound_address_without_redirection(family: int) -> None:
    with udp_pair(family) as pair:
        require(pair.receiver, Feature.ORIGINAL_DESTINATION)
        host, port = pair.address
        assert pair.roundtrip().original_destination == OriginalDestination(ip_address(host), port)


def test_the_original_destination_of_an_ipv4_datagram_on_a_dual_stack_socket_is_ipv4() -> None:
    with dual_stack_socket() as sock, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        require(sock, Feature.ORIGINAL_DESTINATION)
        port = sock.getsockname()[1]
        sender.sendto(b"v4", ("127.0.0.1", port))
        assert portmsg.recv(sock).original_destination == OriginalDestination(IPv4Address("127.0.0.1"), port)


_TPROXY_SCRIPT = """
import socket, portmsg
from portmsg import Feature
IP_TRANSPARENT = 19  # linux/in.h
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
    rx.setsockopt(socket.SOL_IP, IP_TRANSPARENT, 1)
    rx.bind(("127.0.0.1", 8888))
    assert Feature.ORIGINAL_DESTINATION in portmsg.enable(rx, Feature.ORIGINAL_DESTINATION)
    rx.settimeout(5)
    tx.sendto(b"redirected", ("127.0.0.2", 7777))
    message = portmsg.recv(rx)
    print(message.data.decode(), message.original_destination.address, message.original_destination.port)
"""
# A network namespace of our own: lo up, marked packets routed locally, and nftables' TPROXY
# taking UDP to 127.0.0.2:7777 to the socket on 127.0.0.1:8888.
_TPROXY_SETUP = (
    "ip link set lo up && ip rule add fwmark 1 lookup 100 && ip route add local 0.0.0.0/0 dev lo table 100"
    " && nft add table ip portmsg"
    " && nft 'add chain ip portmsg pre { type filter hook prerouting priority mangle; }'"
    " && nft 'add rule ip portmsg pre udp dport 7777 tproxy to 127.0.0.1:8888 meta mark set 1 accept'"
)


def test_the_original_destination_of_a_tproxy_redirected_datagram(tmp_path: Path) -> None:
    """The real case, in a network namespace of our own (needs unshare, ip and nft, and root there)."""
    if not all(shutil.which(tool) for tool in ("unshare", "ip", "nft")):
        pytest.skip("needs unshare(1), ip(8) and nft(8) (apt: util-linux, iproute2, nftables)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        require(sock, Feature.ORIGINAL_DESTINATION)
    setup = subprocess.run(["unshare", "-n", "sh", "-c", _TPROXY_SETUP], capture_output=True, text=True, check=False)
    if setup.returncode:
        pytest.skip(f"no TPROXY in a network namespace here: {setup.stderr.strip()}")
    run = subprocess.run(
        ["unshare", "-n", "sh", "-c", _TPROXY_SETUP + ' && exec "$0" -c "$1"', sys.executable, _TPROXY_SCRIPT],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,  # python -c puts its directory first on sys.path: never a source tree
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["redirected", "127.0.0.2", "7777"]


# -- BCAST / MCAST, the same on every OS ----------------------------------------------------


def test_a_broadcast_datagram_is_flagged_and_a_unicast_one_is_not() -> None:
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("0.0.0.0", 0))
        receiver.settimeout(TIMEOUT)
        require(receiver, Feature.PACKET_INFO)
        sender.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        port = receiver.getsockname()[1]
        try:
            sender.sendto(b"all", ("127.255.255.255", port))
        except OSError as exc:
            pytest.skip(f"this host does not send to 127.255.255.255: {exc}")
        broadcast = portmsg.recv(receiver)
        sender.sendto(b"one", ("127.0.0.1", port))
        unicast = portmsg.recv(receiver)
        if portmsg.PLATFORM.startswith("wine"):
            pytest.skip(f"{portmsg.PLATFORM} reports neither MSG_BCAST nor a broadcast destination (measured)")
        assert MsgFlag.BCAST in broadcast.flags, broadcast
        assert MsgFlag.BCAST not in unicast.flags, unicast
        # As documented: from the receiving interface's own address where the OS names it (Linux:
        # 127.0.0.1 on lo), else the interface alone.
        info = broadcast.packet_info
        own = info.local if info.local is not None and not info.local.is_unspecified else IPv4Address("0.0.0.0")
        assert own != IPv4Address("127.255.255.255")
        assert broadcast.reply_controls() == [PacketInfo(own, info.interface)]
        if portmsg.PLATFORM == "linux":
            assert own == IPv4Address("127.0.0.1")


def test_a_multicast_datagram_on_loopback_is_flagged() -> None:
    group = "239.255.43.21"
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("0.0.0.0", 0))
        receiver.settimeout(TIMEOUT)
        require(receiver, Feature.PACKET_INFO)
        try:
            membership = socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
            receiver.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, membership)
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("127.0.0.1"))
            sender.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            sender.sendto(b"group", (group, receiver.getsockname()[1]))
            message = portmsg.recv(receiver)
        except OSError as exc:
            pytest.skip(f"multicast on loopback is not available here: {exc}")
        assert message.packet_info.address == IPv4Address(group)
        if portmsg.PLATFORM.startswith("wine"):
            pytest.skip(f"{portmsg.PLATFORM} reports no MSG_MCAST (measured); the destination above is right")
        assert MsgFlag.MCAST in message.flags


# -- expected but missing -------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: socket.AddressFamily(f).name)
def test_missing_names_what_a_cut_control_buffer_lost(family: int) -> None:
    with udp_pair(family) as pair:
        require(pair.receiver, Feature.PACKET_INFO, Feature.HOP_LIMIT)
        on = portmsg.enable(pair.receiver, Feature.PACKET_INFO, Feature.HOP_LIMIT)
        whole = pair.roundtrip()
        assert on.missing(whole) == frozenset()
        cut = pair.roundtrip(ancbufsize=0)  # no room for any control
        assert MsgFlag.CTRUNC in cut.flags
        assert on.missing(cut) == {Feature.PACKET_INFO, Feature.HOP_LIMIT}


# -- decoding, fuzzed -----------------------------------------------------------------------

_C = native.CONSTANTS
_ERR_NAMES = (("IPPROTO_IP", "IP_RECVERR"), ("IPPROTO_IPV6", "IPV6_RECVERR"))
_ERR_KEYS = [(_C[level], _C[kind]) for level, kind in _ERR_NAMES if kind in _C]
_ERR_SIZES = [16 + 16, 16 + 28]


@pytest.mark.skipif(not _ERR_KEYS, reason="no IP_RECVERR on this platform")
@given(st.sampled_from(_ERR_SIZES or [32]), st.data())
def test_any_extended_error_payload_decodes_or_stays_raw(size: int, data: st.DataObject) -> None:
    payload = data.draw(st.binary(min_size=size, max_size=size))
    for level, kind in _ERR_KEYS:
        (control,) = portmsg.normalize([(level, kind, payload)])
        assert isinstance(control, (QueuedError, RawControl))
        if isinstance(control, QueuedError):
            errno_, origin = struct.unpack_from("=IB", payload)
            assert (control.errno, int(control.origin)) == (errno_, origin)


# -- Windows receive timestamps (SIO_TIMESTAMPING), decoded from crafted records ------------


def _windows_normalizer(frequency: int) -> Normalizer:
    """A normalizer with Windows' names for receive timestamps, as _winsock.py builds it."""
    constants = dict(portmsg.native.CONSTANTS) | dict(_PM)
    constants.update(SOL_SOCKET=0xFFFF, SO_TIMESTAMP=0x300A, SIO_TIMESTAMPING=0x980000EB)
    return Normalizer(constants, "win32", perf_frequency=frequency)


_PM = {name: value for name, value in IMPL.constants.items() if name.startswith("PM_")}


@given(st.integers(0, 2**64 - 1), st.sampled_from([10_000_000, 3_579_545, 2_441_366, 1_000_000_000]))
def test_windows_timestamps_count_the_performance_counter_in_ns(ticks: int, frequency: int) -> None:
    (control,) = _windows_normalizer(frequency).normalize([(0xFFFF, 0x300A, struct.pack("=Q", ticks))])
    assert control == Timestamp(ticks * 1_000_000_000 // frequency, Clock.PERF_COUNTER)


@given(st.binary(max_size=16).filter(lambda b: len(b) != 8))
def test_a_windows_timestamp_of_the_wrong_size_stays_raw(payload: bytes) -> None:
    (control,) = _windows_normalizer(10_000_000).normalize([(0xFFFF, 0x300A, payload)])
    assert control == RawControl(0xFFFF, 0x300A, payload)


def test_timestamp_clocks_differ_in_equality() -> None:
    assert Timestamp(5) == Timestamp(5, Clock.REALTIME) != Timestamp(5, Clock.PERF_COUNTER)
    with pytest.raises(TypeError, match=r"Timestamp\.clock must be a Clock"):
        Timestamp(5, "realtime")  # type: ignore[arg-type]
