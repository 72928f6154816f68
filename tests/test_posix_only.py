"""POSIX-only behaviour: Unix datagram sockets, SCM_RIGHTS, SCM_CREDENTIALS.

Backend-specific because Windows has no AF_UNIX datagram sockets, so no
descriptor or credential passing (unix(7) sockets are stream-only there); Wine 8 cannot create
AF_UNIX sockets at all.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import sys
import threading
import time

import pytest

import portmsg
from portmsg import Credentials, Feature, FileDescriptors, MsgFlag, native

if portmsg.BACKEND != "posix":
    pytest.skip("Unix datagram sockets exist only on POSIX: this is the Winsock backend", allow_module_level=True)
fcntl = pytest.importorskip("fcntl", reason="fcntl exists only on POSIX")
LINUX = sys.platform.startswith("linux")


def _is_open(fd: int) -> bool:
    try:
        fcntl.fcntl(fd, fcntl.F_GETFD)
    except OSError:
        return False
    return True


def _open_fds() -> set[int]:
    """Every open descriptor number (checked one by one, so the check opens none)."""
    return {fd for fd in range(min(os.sysconf("SC_OPEN_MAX"), 4096)) if _is_open(fd)}


def _send_devnull(sender: socket.socket, payload: bytes, copies: int, *, datagrams: int = 1) -> None:
    """Send `datagrams` datagrams, each passing `copies` descriptors of /dev/null; ours closed after."""
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        for _ in range(datagrams):
            portmsg.send(sender, payload, controls=[FileDescriptors((fd,) * copies)])
    finally:
        os.close(fd)


@pytest.fixture
def unix_pair():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    b.settimeout(5)
    with a, b:
        yield a, b


def test_fd_passing_round_trips(unix_pair) -> None:
    sender, receiver = unix_pair
    r, w = os.pipe()
    try:
        portmsg.send(sender, b"pipe", controls=[FileDescriptors((w,))])
        message = portmsg.recv(receiver)
        assert message.data == b"pipe"
        assert message.fds is not None
        with message.fds as fds:
            (received,) = fds.fds
            assert received not in (r, w)
            os.write(received, b"through")
            assert os.read(r, 10) == b"through"
    finally:
        os.close(r)
        os.close(w)


@pytest.mark.skipif(not LINUX, reason="MSG_CMSG_CLOEXEC is Linux/FreeBSD only; macOS cannot set it atomically")
def test_received_fds_are_close_on_exec(unix_pair) -> None:
    sender, receiver = unix_pair
    _send_devnull(sender, b"x", 1)
    message = portmsg.recv(receiver)
    assert message.fds is not None
    with message.fds:
        assert fcntl.fcntl(message.fds.fds[0], fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert not message.flags & ~(MsgFlag.TRUNC | MsgFlag.CTRUNC)


def test_fds_stay_open_until_caller_closes_them(unix_pair) -> None:
    sender, receiver = unix_pair
    before = _open_fds()
    _send_devnull(sender, b"x", 3)
    message = portmsg.recv(receiver)
    del message  # no finalizer closes them
    import gc

    gc.collect()
    after = _open_fds()
    new = after - before
    assert len(new) == 3
    for leftover in new:
        os.close(leftover)
    assert _open_fds() == before


def test_ctrunc_with_fds_leaks_nothing(unix_pair) -> None:
    sender, receiver = unix_pair
    before = _open_fds()
    _send_devnull(sender, b"x", 8)
    # Room for 2 descriptors: the kernel installs 2, closes 6 and sets MSG_CTRUNC.
    message = portmsg.recv(receiver, ancbufsize=portmsg.CMSG_SPACE(8))
    assert MsgFlag.CTRUNC in message.flags
    assert message.fds is not None
    assert len(message.fds) == 2
    message.fds.close()
    assert _open_fds() == before


def test_credentials_arrive_when_enabled(unix_pair) -> None:
    sender, receiver = unix_pair
    if Feature.CREDENTIALS not in portmsg.enable(receiver, Feature.CREDENTIALS):
        pytest.skip(f"portmsg.enable() reports CREDENTIALS unavailable on {sys.platform}")
    sender.send(b"who")
    message = portmsg.recv(receiver)
    assert message.credentials == Credentials(os.getpid(), os.getuid(), os.getgid())


@pytest.mark.skipif(not LINUX, reason="SCM_CREDENTIALS is Linux's")
def test_linux_delivers_credentials_feature() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        assert portmsg.enable(sock, Feature.CREDENTIALS) == {Feature.CREDENTIALS}


def test_sent_credentials_arrive_and_false_ones_are_refused_by_the_kernel(unix_pair) -> None:
    if not hasattr(native, "SCM_CREDENTIALS"):
        pytest.skip("no SCM_CREDENTIALS on this platform")
    sender, receiver = unix_pair
    assert portmsg.enable(receiver, Feature.CREDENTIALS) == {Feature.CREDENTIALS}
    mine = Credentials(os.getpid(), os.getuid(), os.getgid())
    portmsg.send(sender, b"me", controls=[mine])
    assert portmsg.recv(receiver).credentials == mine
    # No process has this pid (above pid_max): the kernel refuses, even for root (ESRCH).
    with pytest.raises(ProcessLookupError):
        portmsg.send(sender, b"forged", controls=[Credentials(2**22 + 1, os.getuid(), os.getgid())])


def test_unix_datagram_to_path(tmp_path) -> None:
    path = str(tmp_path / "s")
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(path)
        receiver.settimeout(5)
        assert portmsg.send(sender, b"to path", path) == 7
        message = portmsg.recv(receiver)
        assert message.data == b"to path"


def test_unix_path_too_long_is_an_os_error() -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender, pytest.raises(OSError, match="too long"):
        portmsg.send(sender, b"x", "/" + "a" * 200)


@pytest.mark.skipif(not LINUX, reason="Linux expectations")
def test_linux_enables_every_ip_feature() -> None:
    """The platform table in the README promises these on Linux: a regression must fail, not skip.

    CREDENTIALS (Unix sockets) is the one left out, and enable() says why.
    """
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.bind((host, 0))
            on = portmsg.enable(sock, *Feature)
            assert on == {
                Feature.PACKET_INFO,
                Feature.TRAFFIC_CLASS,
                Feature.ECN,
                Feature.HOP_LIMIT,
                Feature.TIMESTAMP,
                Feature.SEGMENT_OFFLOAD,
                Feature.DROPS,
                Feature.ORIGINAL_DESTINATION,
                Feature.ERRORS,
            }
            assert on.refused == {Feature.CREDENTIALS: f"does not apply to an {family.name} datagram socket"}


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_eintr_is_retried_and_a_raising_handler_interrupts() -> None:
    """PEP 475: a handler that returns lets the call go on; one that raises ends it."""
    with (
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender,
    ):
        receiver.bind(("127.0.0.1", 0))
        fired = []

        def quiet(signum: int, frame: object) -> None:
            fired.append(signum)
            if len(fired) == 3:
                sender.sendto(b"after signals", receiver.getsockname())

        old = signal.signal(signal.SIGALRM, quiet)
        try:
            signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
            assert portmsg.recv(receiver).data == b"after signals"
            signal.setitimer(signal.ITIMER_REAL, 0)
            assert len(fired) >= 3

            class StopError(Exception):
                pass

            def loud(signum: int, frame: object) -> None:
                raise StopError

            signal.signal(signal.SIGALRM, loud)
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            with pytest.raises(StopError):
                portmsg.recv(receiver)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, old)


def test_each_peek_hands_over_fresh_descriptors_and_nothing_leaks(unix_pair) -> None:
    sender, receiver = unix_pair
    before = _open_fds()
    _send_devnull(sender, b"peek", 2)
    peeked = portmsg.recv(receiver, peek=True)
    taken = portmsg.recv(receiver)
    assert peeked.fds is not None
    assert taken.fds is not None
    assert set(peeked.fds.fds).isdisjoint(taken.fds.fds)  # the kernel installed two sets
    peeked.fds.close()
    taken.fds.close()
    assert _open_fds() == before


def _failing_decode(*args: object) -> None:
    """Stands in for the normalizer's decoding: an error after the syscall took the datagram."""
    raise MemoryError


def test_descriptors_are_closed_when_decoding_fails_after_the_call(unix_pair, monkeypatch) -> None:
    """An error after the syscall (here: the decoder raising) must not leak what arrived."""
    sender, receiver = unix_pair
    before = _open_fds()
    _send_devnull(sender, b"x", 3)
    monkeypatch.setattr(portmsg._api.NORMALIZER, "from_records", _failing_decode)
    with pytest.raises(MemoryError):
        portmsg.recv(receiver)
    assert _open_fds() == before


def test_batch_descriptors_are_closed_when_decoding_fails(unix_pair, monkeypatch) -> None:
    """When a batch fails half-way nothing is handed over, so every descriptor in it is closed."""
    sender, receiver = unix_pair
    before = _open_fds()
    _send_devnull(sender, b"x", 1, datagrams=3)
    calls = []

    decode = portmsg._api.NORMALIZER.from_records

    def decode_then_fail(*args: object) -> object:
        calls.append(args)
        if len(calls) == 2:
            raise MemoryError
        return decode(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(portmsg._api.NORMALIZER, "from_records", decode_then_fail)
    with pytest.raises(MemoryError):
        portmsg.recv_batch(receiver, 3, 100)
    assert len(calls) == 2
    assert _open_fds() == before


def test_recv_into_closes_descriptors_when_decoding_fails(unix_pair, monkeypatch) -> None:
    """receive_into's error path: the datagram was taken, so what it carried is closed."""
    sender, receiver = unix_pair
    before = _open_fds()
    _send_devnull(sender, b"x", 2)
    monkeypatch.setattr(portmsg._api.NORMALIZER, "from_records", _failing_decode)
    buffer = bytearray(16)
    with pytest.raises(MemoryError):
        portmsg.recv_into(receiver, buffer)
    assert bytes(buffer[:1]) == b"x"
    assert _open_fds() == before


@pytest.fixture
def full_unix_pair(unix_pair):
    """A Unix datagram pair whose receive queue is full: the next send would block."""
    sender, receiver = unix_pair
    sender.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            sender.send(b"f" * 512)
    return sender, receiver


def test_send_on_a_full_nonblocking_socket_raises_blocking_io_error(full_unix_pair) -> None:
    sender, _ = full_unix_pair
    with pytest.raises(BlockingIOError) as ours:
        portmsg.send(sender, b"more")
    with pytest.raises(BlockingIOError) as stdlib:
        sender.send(b"more")
    assert ours.value.errno == stdlib.value.errno


def test_send_on_a_full_socket_times_out_as_the_stdlib(full_unix_pair) -> None:
    sender, _ = full_unix_pair
    sender.settimeout(0.2)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="timed out"):
        portmsg.sendmsg(sender, [b"more"])
    assert time.monotonic() - start >= 0.19


def _drain(receiver: socket.socket) -> list[bytes]:
    got = []
    receiver.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            got.append(receiver.recv(1024))
    return got


def test_send_waits_for_room_on_a_timeout_socket(full_unix_pair) -> None:
    sender, receiver = full_unix_pair
    sender.settimeout(5)
    timer = threading.Timer(0.1, _drain, args=(receiver,))
    timer.start()
    try:
        assert portmsg.send(sender, b"late") == 4
    finally:
        timer.join()


def test_partial_send_batch_is_reported(full_unix_pair) -> None:
    """A batch that does not fit is sent in part: the count says how many went, the rest did not."""
    sender, receiver = full_unix_pair
    receiver.recv(1024)  # room for exactly one more datagram of the same size
    batch = [(name * 512, None) for name in (b"1", b"2", b"3")]
    assert portmsg.send_batch(sender, batch) == 1
    got = _drain(receiver)
    assert got[-1] == b"1" * 512
    assert b"2" * 512 not in got


def test_receives_keep_the_gil_and_a_blocked_send_lets_other_threads_run(unix_pair) -> None:
    """POSIX only: this module's wrappers keep the GIL (receives never block: MSG_DONTWAIT), sends release it.

    Windows' module keeps cffi's default (its receive may wait in C).  If a send blocked in C with
    the GIL held, the main thread could not run again until SO_SNDTIMEO gave up (3 s).
    """
    assert portmsg._api.IMPL.lib.pm_gil_kept() == 1, "cffi no longer lets posix.h keep the GIL: see its comment"
    sender, receiver = unix_pair
    sender.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", 3, 0))
    sender.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            sender.send(b"f" * 512)
    sender.setblocking(True)  # timeout None: portmsg.sendmsg blocks in C (pm_send)
    sent: list[int] = []
    thread = threading.Thread(target=lambda: sent.append(portmsg.sendmsg(sender, [b"x" * 512])))
    start = time.monotonic()
    thread.start()
    time.sleep(0.1)  # the thread is in sendmsg now, blocked on the full queue
    resumed = time.monotonic() - start
    receiver.setblocking(False)
    with contextlib.suppress(BlockingIOError):
        while True:
            receiver.recv(1024)
    thread.join(10)
    assert sent == [512]
    assert resumed < 1.5, f"the main thread ran again only after {resumed:.2f} s: the blocked send held the GIL"
