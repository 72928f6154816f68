"""portmsg.Receiver: the same results as recv / recv_batch, on every backend, and its thread rule."""

from __future__ import annotations

import socket
import threading
from typing import TYPE_CHECKING

import pytest
from helpers import Pair, mixed_senders, send_mixed

import portmsg
from portmsg import Feature

if TYPE_CHECKING:
    from collections.abc import Callable


def _refused_in_another_thread(call: Callable[[], object]) -> str:
    """What the RuntimeError says when call() runs in a thread of its own (it must raise one)."""
    errors: list[RuntimeError] = []

    def other() -> None:
        try:
            call()
        except RuntimeError as exc:
            errors.append(exc)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(10)
    assert len(errors) == 1, "another thread's call was not refused"
    return str(errors[0])


def test_receiver_gives_what_recv_gives_for_any_mix_of_senders_and_controls(pair: Pair) -> None:
    receiver = portmsg.Receiver(pair.receiver, bufsize=200)
    with mixed_senders(pair) as order:
        for start in range(0, len(order), 100):
            chunk = order[start : start + 100]
            send_mixed(pair, chunk, start)
            bound = [receiver.recv() for _ in chunk]
            send_mixed(pair, chunk, start)
            shared = [portmsg.recv(pair.receiver, 200) for _ in chunk]
            assert bound == shared


def test_receiver_batch_gives_what_recv_batch_gives(pair: Pair) -> None:
    pair.require(Feature.PACKET_INFO)
    receiver = portmsg.Receiver(pair.receiver, bufsize=100, batch=8)
    for i in range(20):
        pair.send(b"%d" % i * i)
    got: list[portmsg.Message] = []
    while len(got) < 20:
        batch = receiver.recv_batch()
        assert 1 <= len(batch) <= 8
        got.extend(batch)
    assert [m.data for m in got] == [(b"%d" % i * i)[:100] for i in range(20)]
    assert all(m.packet_info is not None for m in got)


def test_receiver_recv_refuses_other_threads_and_takes_nothing(pair: Pair) -> None:
    receiver = portmsg.Receiver(pair.receiver)
    pair.send(b"kept")
    assert "thread that made it" in _refused_in_another_thread(receiver.recv)
    assert receiver.recv().data == b"kept"  # the refused call took nothing
    pair.send(b"batch")
    batches: list[list[portmsg.Message]] = []
    thread = threading.Thread(target=lambda: batches.append(receiver.recv_batch()))  # any thread may batch
    thread.start()
    thread.join(10)
    assert [m.data for m in batches[0]] == [b"batch"]


def test_receiver_waits_and_fails_as_recv_does(pair: Pair) -> None:
    receiver = portmsg.Receiver(pair.receiver)
    pair.receiver.settimeout(0.05)
    with pytest.raises(TimeoutError):
        receiver.recv()
    pair.receiver.setblocking(False)
    with pytest.raises(BlockingIOError):
        receiver.recv()
    pair.send(b"late")
    assert receiver.recv().data == b"late"
    pair.receiver.close()
    with pytest.raises(OSError) as ours:
        receiver.recv()
    with pytest.raises(OSError) as theirs:
        portmsg.recv(pair.receiver)
    assert (type(ours.value), ours.value.errno) == (type(theirs.value), theirs.value.errno)


def test_receiver_checks_its_arguments_once() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        with pytest.raises(ValueError, match="negative buffer size"):
            portmsg.Receiver(sock, bufsize=-1)
        with pytest.raises(ValueError, match="invalid ancillary data buffer length"):
            portmsg.Receiver(sock, ancbufsize=-1)
        for batch in (0, 1025):
            with pytest.raises(ValueError, match="batch must be 1-1024"):
                portmsg.Receiver(sock, batch=batch)
        with pytest.raises(TypeError):
            portmsg.Receiver(sock, bufsize="2048")  # type: ignore[arg-type]
        assert "bufsize=65535" in repr(portmsg.Receiver(sock))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, pytest.raises(TypeError, match="datagram sockets"):
        portmsg.Receiver(tcp)


def test_receiver_recv_into_gives_what_recv_into_gives(pair: Pair) -> None:
    """Into the buffer given once: the same (nbytes, Message) and bytes as portmsg.recv_into, cut ones included."""
    buffer, theirs_buffer = bytearray(200), bytearray(200)
    receiver = portmsg.Receiver(pair.receiver, buffer=buffer)
    with mixed_senders(pair) as order:
        chunk = order[:150]
        send_mixed(pair, chunk, 0)
        ours = []
        for _ in chunk:
            n, message = receiver.recv_into()
            ours.append((n, message, bytes(buffer[: min(n, 200)])))
        send_mixed(pair, chunk, 0)
        theirs = []
        for _ in chunk:
            n, message = portmsg.recv_into(pair.receiver, theirs_buffer)
            theirs.append((n, message, bytes(theirs_buffer[: min(n, 200)])))
    assert ours == theirs
    assert any(message.truncated for _, message, _ in ours)


def test_receiver_recv_into_needs_a_writable_buffer_and_its_thread(pair: Pair) -> None:
    with pytest.raises(ValueError, match="has no buffer"):
        portmsg.Receiver(pair.receiver).recv_into()
    with pytest.raises(TypeError, match="writable bytes-like"):
        portmsg.Receiver(pair.receiver, buffer=b"read-only")
    receiver = portmsg.Receiver(pair.receiver, buffer=bytearray(64))
    pair.send(b"kept")
    assert "thread that made it" in _refused_in_another_thread(receiver.recv_into)
    n, message = receiver.recv_into()
    assert (n, message.data, message.address) == (4, b"", pair.sender.getsockname())
