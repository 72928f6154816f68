"""Threads and closing: the same on every backend."""

from __future__ import annotations

import hashlib
import linecache
import select
import socket
import sys
import threading
import time
import types
from typing import TYPE_CHECKING

import pytest
from helpers import LOOPBACK, Pair

import portmsg
from portmsg import Feature

if TYPE_CHECKING:
    from collections.abc import Callable


def _payload(i: int) -> bytes:
    body = b"%08d" % i
    return body + hashlib.sha256(body).digest()[:8]


def test_threads_receive_every_datagram_exactly_once(pair: Pair) -> None:
    pair.receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    pair.enable(Feature.PACKET_INFO, Feature.HOP_LIMIT)
    total, senders = 2000, 2
    received: list[bytes] = []
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []

    def receive(batch: bool) -> None:
        pair.receiver.settimeout(0.5)
        try:
            while not done.is_set():
                try:
                    got = portmsg.recv_batch(pair.receiver, 8) if batch else [portmsg.recv(pair.receiver)]
                except TimeoutError:
                    continue
                with lock:
                    received.extend(m.data for m in got)
                    if len(received) >= total:
                        done.set()
        except BaseException as exc:
            errors.append(exc)
            done.set()

    def send(start: int) -> None:
        with socket.socket(pair.family, socket.SOCK_DGRAM) as sock:
            for n, i in enumerate(range(start, total, senders)):
                sock.sendto(_payload(i), pair.address)
                if n % 32 == 0:
                    time.sleep(0.001)  # let the receivers keep up: loopback drops when the buffer is full

    receivers = [threading.Thread(target=receive, args=(i % 2 == 0,)) for i in range(4)]
    for thread in receivers:
        thread.start()
    for thread in [threading.Thread(target=send, args=(i,)) for i in range(senders)]:
        thread.start()
        thread.join()
    done.wait(30)
    done.set()
    for thread in receivers:
        thread.join()
    assert not errors
    assert sorted(received) == sorted(_payload(i) for i in range(total))


def test_closing_the_socket_ends_a_blocked_receive() -> None:
    family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK[family], 0))
    outcome: list[BaseException | portmsg.Message] = []

    def block() -> None:
        try:
            outcome.append(portmsg.recv(sock))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=block)
    thread.start()
    time.sleep(0.2)
    sock.close()
    thread.join(5)
    assert not thread.is_alive(), "recv kept blocking on a closed socket"
    assert len(outcome) == 1
    assert isinstance(outcome[0], OSError)


def test_receive_in_many_threads_shares_no_buffers(pair: Pair) -> None:
    """Each thread's result is its own datagram's, even when all run at once."""
    payloads = [bytes([i]) * (10 + i) for i in range(50)]
    for p in payloads:
        pair.send(p)
    results: list[bytes] = []
    lock = threading.Lock()

    def take() -> None:
        message = portmsg.recv(pair.receiver)
        with lock:
            results.append(message.data)

    threads = [threading.Thread(target=take) for _ in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == sorted(payloads)
    assert all(len(set(r)) == 1 and len(r) == 10 + r[0] for r in results)


@pytest.mark.parametrize("bufsize", [0, 1, 65535, 1 << 20])
def test_any_buffer_size_works(pair: Pair, bufsize: int) -> None:
    pair.send(b"sized")
    message = portmsg.recv(pair.receiver, bufsize)
    assert message.data == b"sized"[:bufsize]
    assert message.truncated == (bufsize < 5)


@pytest.mark.parametrize("timeout", [None, 5.0], ids=["blocking", "timeout"])
def test_a_waiting_receive_never_reads_a_socket_that_took_its_descriptor_number(timeout: float | None) -> None:
    """Closed while waiting, then the number is reused by another socket with a datagram queued:
    the waiting receive must end with the closed socket's error, and the datagram stay where it is."""
    family = socket.AF_INET
    victim = socket.socket(family, socket.SOCK_DGRAM)
    victim.bind((LOOPBACK[family], 0))
    victim.settimeout(timeout)
    number = victim.fileno()
    outcome: list[BaseException | portmsg.Message] = []

    def block() -> None:
        try:
            outcome.append(portmsg.recv(victim))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=block)
    thread.start()
    time.sleep(0.3)
    victim.close()
    with socket.socket(family, socket.SOCK_DGRAM) as heir, socket.socket(family, socket.SOCK_DGRAM) as sender:
        if heir.fileno() != number:
            thread.join(5)
            pytest.skip(f"{portmsg.PLATFORM} did not reuse descriptor {number} (got {heir.fileno()})")
        heir.bind((LOOPBACK[family], 0))
        heir.settimeout(5)
        sender.sendto(b"not yours", heir.getsockname())
        thread.join(5)
        assert not thread.is_alive()
        assert len(outcome) == 1
        assert isinstance(outcome[0], OSError), outcome
        assert heir.recv(100) == b"not yours"


# -- an exception between the C call and the Messages ------------------------------------------


class _InterruptedError(Exception):
    """What a signal handler raises (KeyboardInterrupt, say), here from a trace function."""


def _raise_after_the_c_receive(receive: Callable[[], object]) -> None:
    """Call receive(), raising _InterruptedError at the first line run after portmsg's C receive call.

    CPython runs signal handlers right after a C call returns, before its result is stored: a
    trace function raising at the next line is that moment, made exact.  The call is found in
    portmsg's own source (a line calling a `pm_recv*` function), on every backend.
    """
    last_line: dict[types.FrameType, int] = {}

    def tracer(frame: types.FrameType, event: str, arg: object) -> object:
        code = frame.f_code
        if "portmsg" not in code.co_filename:
            return None
        if event == "line":
            before = last_line.get(frame)
            last_line[frame] = frame.f_lineno
            if before is not None and "pm_recv" in linecache.getline(code.co_filename, before):
                sys.settrace(None)
                frame.f_trace = None
                raise _InterruptedError
        return tracer

    sys.settrace(tracer)
    try:
        with pytest.raises(_InterruptedError):
            receive()
    finally:
        sys.settrace(None)


def _receiver(name: str, sock: socket.socket) -> Callable[[], list[tuple[bytes, object]]]:
    """One of portmsg's receives on sock, as a call giving each datagram's (data, address)."""
    if name == "recv":
        return lambda: [(m.data, m.address) for m in [portmsg.recv(sock)]]
    if name == "recv_batch":
        return lambda: [(m.data, m.address) for m in portmsg.recv_batch(sock, 8)]
    if name == "Receiver.recv_into":
        buffer = bytearray(2048)
        receiver = portmsg.Receiver(sock, buffer=buffer)

        def recv_into() -> list[tuple[bytes, object]]:
            n, message = receiver.recv_into()
            return [(bytes(buffer[:n]), message.address)]

        return recv_into
    receiver = portmsg.Receiver(sock, batch=8)
    if name == "Receiver.recv":
        return lambda: [(m.data, m.address) for m in [receiver.recv()]]
    return lambda: [(m.data, m.address) for m in receiver.recv_batch()]


@pytest.mark.parametrize("name", ["recv", "recv_batch", "Receiver.recv", "Receiver.recv_into", "Receiver.recv_batch"])
def test_a_receive_interrupted_after_its_c_call_leaves_no_stale_sender(pair: Pair, name: str) -> None:
    """The C side had compared the lost datagram's sender with the one before; the next must not reuse it."""
    pair.enable(Feature.PACKET_INFO)
    pair.receiver.settimeout(5)
    receive = _receiver(name, pair.receiver)
    with socket.socket(pair.family, socket.SOCK_DGRAM) as other:
        other.bind((LOOPBACK[pair.family], 0))
        pair.send(b"first")
        assert [(data, address[:2]) for data, address in receive()] == [(b"first", pair.sender.getsockname()[:2])]
        other.sendto(b"lost", pair.address)
        assert select.select([pair.receiver], [], [], 5)[0]  # queued: the C call takes it
        _raise_after_the_c_receive(receive)  # "lost" was taken, its objects never built
        other.sendto(b"next", pair.address)
        assert [(data, address[:2]) for data, address in receive()] == [(b"next", other.getsockname()[:2])]
