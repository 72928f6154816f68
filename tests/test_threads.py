"""Threads: several threads on one socket, and threads each with their own, at once.

portmsg relies on no lock of its own and not on the GIL: scratch buffers are
taken from and given back to free lists one call at a time, caches hold
immutable values.  On a free-threaded CPython (3.14t, the real-runner CI
job) this runs the receive and send paths truly in parallel; on a GIL build
it still interleaves them at every call.  Every datagram must arrive once,
byte-exact, with its metadata right.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from helpers import require

import portmsg
from portmsg import Feature, HopLimit

THREADS = 4
PER_SENDER = 1500


def _receiver() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    sock.bind(("127.0.0.1", 0))
    require(sock, Feature.PACKET_INFO)
    sock.settimeout(0.5)
    return sock


def _send_all(target: Any, sender_id: int, count: int, errors: list[BaseException]) -> None:
    """count datagrams (with a hop limit, by send_batch where controls can be sent) to target."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            controls = [] if portmsg.PLATFORM.startswith("wine") else [HopLimit(33)]
            for start in range(0, count, 32):
                batch = [(b"%d-%d" % (sender_id, i), target, controls) for i in range(start, min(count, start + 32))]
                sent = 0
                while sent < len(batch):
                    sent += portmsg.send_batch(tx, batch[sent:])
    except BaseException as exc:
        errors.append(exc)


def _drain(sock: socket.socket, how: str, got: list[portmsg.Message], errors: list[BaseException]) -> None:
    buffer = bytearray(64)
    try:
        while True:
            try:
                if how == "recv":
                    got.append(portmsg.recv(sock))
                elif how == "recv_batch":
                    got.extend(portmsg.recv_batch(sock, 16))
                else:
                    n, message = portmsg.recv_into(sock, buffer)
                    got.append(portmsg.Message(bytes(buffer[:n]), message.address, message.flags, message.controls))
            except TimeoutError:
                return
    except BaseException as exc:
        errors.append(exc)


def _check(got: list[portmsg.Message], senders: int, hops: bool) -> None:
    payloads = [m.data for m in got]
    assert len(payloads) == len(set(payloads)), "a datagram arrived twice"
    assert set(payloads) == {b"%d-%d" % (s, i) for s in range(senders) for i in range(PER_SENDER)}
    for message in got:
        assert message.packet_info is not None
        assert str(message.packet_info.address) == "127.0.0.1"
        if hops:
            assert message.hop_limit == HopLimit(33)


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()


@pytest.mark.parametrize("how", ["recv", "recv_batch", "recv_into"])
def test_threads_sharing_one_socket_get_every_datagram_once(how: str) -> None:
    with _receiver() as rx:
        hops = Feature.HOP_LIMIT in portmsg.enable(rx, Feature.HOP_LIMIT) and not portmsg.PLATFORM.startswith("wine")
        errors: list[BaseException] = []
        results: list[list[portmsg.Message]] = [[] for _ in range(THREADS)]
        senders = [threading.Thread(target=_send_all, args=(rx.getsockname(), s, PER_SENDER, errors)) for s in range(2)]
        drainers = [threading.Thread(target=_drain, args=(rx, how, results[t], errors)) for t in range(THREADS)]
        _run(senders + drainers)
        assert not errors, errors
        _check([m for part in results for m in part], 2, hops)


def test_threads_with_their_own_sockets_run_side_by_side() -> None:
    sockets = [_receiver() for _ in range(THREADS)]
    try:
        errors: list[BaseException] = []
        results: list[list[portmsg.Message]] = [[] for _ in range(THREADS)]
        ways = ["recv", "recv_batch", "recv_into", "recv_batch"]
        threads = [threading.Thread(target=_send_all, args=(s.getsockname(), 0, PER_SENDER, errors)) for s in sockets]
        threads += [
            threading.Thread(target=_drain, args=(s, ways[i], results[i], errors)) for i, s in enumerate(sockets)
        ]
        _run(threads)
        assert not errors, errors
        for part in results:
            _check(part, 1, hops=False)
    finally:
        for sock in sockets:
            sock.close()
