"""portmsg.aio on every asyncio loop this platform has: the same behaviour from both engines.

Linux: the default (selector) loop and uvloop.  Windows (Wine here): the
ProactorEventLoop (completion engine) and the SelectorEventLoop (readiness).
Every loop runs in debug mode with an exception handler that records what it
is given; a test fails if anything was recorded (a stray completion packet,
an error in a callback).
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
import time
from typing import Any

import pytest
from helpers import FAMILIES, LOOPBACK, dual_stack_socket, send_option

import portmsg
import portmsg._completion
from portmsg import Feature, MsgFlag, aio

WINE = portmsg.PLATFORM.startswith("wine")


def _udp(family: int = socket.AF_INET, rcvbuf: int = 1 << 20) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((LOOPBACK[family], 0))
    sock.setblocking(False)
    return sock


def _burst(sender: socket.socket, to: Any, count: int, prefix: bytes = b"") -> None:
    for i in range(count):
        sender.sendto(prefix + b"%d" % i, to)
        if i % 50 == 49:
            time.sleep(0.002)  # loopback drops what a full buffer cannot take


def _engine() -> str:
    return (
        "completion"
        if isinstance(asyncio.get_running_loop(), getattr(asyncio, "ProactorEventLoop", ()))
        else "readiness"
    )


# -- the same Messages as the synchronous API -----------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: socket.AddressFamily(f).name)
def test_engines_give_the_messages_recv_gives(run, family: int) -> None:
    async def main() -> None:
        with _udp(family) as rx, socket.socket(family, socket.SOCK_DGRAM) as tx:
            on = portmsg.enable(rx, Feature.PACKET_INFO, Feature.HOP_LIMIT, Feature.TRAFFIC_CLASS)
            tx.setsockopt(*send_option(family, "hops"), 7)
            for payload in (b"one", b"two"):
                tx.sendto(payload, rx.getsockname())
            rx.setblocking(True)
            rx.settimeout(5)
            expected = portmsg.recv(rx)
            rx.setblocking(False)
            async with aio.open_receiver(rx) as receiver:
                assert receiver.engine == _engine()
                got = await asyncio.wait_for(receiver.recv(), 5)
            assert got.data == b"two"
            assert (got.address, got.flags, got.controls) == (expected.address, expected.flags, expected.controls)
            assert Feature.PACKET_INFO not in on or got.packet_info is not None

    run(main)


def test_dual_stack_receiver_reports_ipv4_destinations(run) -> None:
    async def main() -> None:
        rx = dual_stack_socket()
        rx.setblocking(False)
        with rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            if Feature.PACKET_INFO not in portmsg.enable(rx, Feature.PACKET_INFO):
                pytest.skip(f"portmsg.enable() reports PACKET_INFO unavailable on {portmsg.BACKEND}")
            async with aio.open_receiver(rx) as receiver:
                tx.sendto(b"v4", ("127.0.0.1", rx.getsockname()[1]))
                msg = await asyncio.wait_for(receiver.recv(), 5)
            assert msg.address[0] == "::ffff:127.0.0.1"
            assert str(msg.packet_info.address) == "127.0.0.1"

    run(main)


# -- order, completions at once, truncation -----------------------------------------------


@pytest.mark.parametrize("depth", [1, 4, 16])
def test_bursts_arrive_in_order(run, depth: int) -> None:
    async def main() -> None:
        with _udp(rcvbuf=4 << 20) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            async with aio.open_receiver(rx, depth=depth) as receiver:
                _burst(tx, rx.getsockname(), 500)
                got = [(await asyncio.wait_for(receiver.recv(), 5)).data for _ in range(500)]
            assert got == [b"%d" % i for i in range(500)]

    run(main)


def test_a_datagram_queued_before_the_receiver_is_delivered_once(run) -> None:
    async def main() -> None:
        with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.sendto(b"early", rx.getsockname())
            time.sleep(0.05)
            async with aio.open_receiver(rx) as receiver:
                assert (await asyncio.wait_for(receiver.recv(), 5)).data == b"early"
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(receiver.recv(), 0.2)

    run(main)


def test_queued_datagrams_larger_than_the_buffer_arrive_cut_and_flagged(run) -> None:
    """Posted onto queued, too-large datagrams, WSARecvMsg fails at once with WSAEMSGSIZE, and its
    completion packet still comes: 20 times over, each arrives cut, and no stray packet reaches the loop."""

    async def main() -> None:
        with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            portmsg.enable(rx, Feature.PACKET_INFO)
            for i in range(20):
                tx.sendto(b"%02d-0123456789" % i, rx.getsockname())
            time.sleep(0.05)
            async with aio.open_receiver(rx, bufsize=4) as receiver:
                got = [await asyncio.wait_for(receiver.recv(), 5) for _ in range(20)]
                await asyncio.sleep(0.1)  # let any stray packet show itself
            assert [m.data for m in got] == [b"%02d-0" % i for i in range(20)]
            assert all(m.truncated and MsgFlag.TRUNC in m.flags for m in got)

    run(main)


def test_a_datagram_cut_while_a_receive_is_pending(run) -> None:
    async def main() -> None:
        with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            async with aio.open_receiver(rx, bufsize=8) as receiver:
                await asyncio.sleep(0.05)  # the receives are posted and waiting
                tx.sendto(b"0123456789abcdef", rx.getsockname())
                msg = await asyncio.wait_for(receiver.recv(), 5)
            assert (msg.data, msg.truncated) == (b"01234567", True)

    run(main)


# -- the receives belong to the receiver ----------------------------------------------------


def test_a_timed_out_or_cancelled_recv_loses_nothing(run) -> None:
    async def main() -> None:
        with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            async with aio.open_receiver(rx) as receiver:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(receiver.recv(), 0.05)
                tx.sendto(b"after-timeout", rx.getsockname())
                assert (await asyncio.wait_for(receiver.recv(), 5)).data == b"after-timeout"
                waiting = asyncio.ensure_future(receiver.recv())
                await asyncio.sleep(0.01)
                tx.sendto(b"race", rx.getsockname())
                time.sleep(0.05)  # landed (in the kernel or the receiver) before the loop looks
                waiting.cancel()
                assert (await asyncio.wait_for(receiver.recv(), 5)).data == b"race"

    run(main)


def test_close_ends_waiting_receives_and_iteration(run) -> None:
    async def main() -> None:
        with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            receiver = aio.open_receiver(rx)
            waiting = asyncio.ensure_future(receiver.recv())
            await asyncio.sleep(0.01)
            receiver.close()
            with pytest.raises(OSError) as closed:
                await asyncio.wait_for(waiting, 5)
            assert type(closed.value) is type(_closed_error())
            receiver = aio.open_receiver(rx)
            tx.sendto(b"last", rx.getsockname())
            seen = []
            async for msg in receiver:
                seen.append(msg.data)
                receiver.close()
            assert seen == [b"last"]

    run(main)


def _closed_error() -> OSError:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.close()
    try:
        probe.recvfrom(1)
    except OSError as exc:
        return exc
    raise AssertionError


def test_a_socket_closed_under_a_waiting_recv_ends_it(run) -> None:
    async def main() -> None:
        if sys.platform == "win32" and _engine() == "readiness":
            pytest.skip(
                "Windows' select() fails the whole SelectorEventLoop (WSAENOTSOCK) when a socket it watches is "
                "closed: close the receiver before the socket (documented); the Proactor's receiver ends cleanly"
            )
        rx = _udp()
        receiver = aio.open_receiver(rx)
        waiting = asyncio.ensure_future(receiver.recv())
        await asyncio.sleep(0.01)
        rx.close()
        with pytest.raises(OSError) as closed:
            await asyncio.wait_for(waiting, 5)
        assert type(closed.value) is type(_closed_error())
        receiver.close()

    run(main)


def test_backpressure_holds_the_queue_and_loses_nothing(run) -> None:
    async def main() -> None:
        with _udp(rcvbuf=4 << 20) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            async with aio.open_receiver(rx, max_queued=16) as receiver:
                _burst(tx, rx.getsockname(), 200)
                await asyncio.sleep(0.2)
                peak = len(receiver._queue)
                got = [(await asyncio.wait_for(receiver.recv(), 5)).data for _ in range(200)]
            assert peak <= 16 + aio.BATCH
            assert got == [b"%d" % i for i in range(200)]

    run(main)


def test_a_flood_on_one_socket_does_not_starve_another(run) -> None:
    async def main() -> None:
        with _udp(rcvbuf=4 << 20) as flooded, _udp() as quiet, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            _burst(tx, flooded.getsockname(), 1000, b"f")
            tx.sendto(b"q", quiet.getsockname())
            time.sleep(0.05)
            order: list[str] = []

            async def consume(receiver: aio.Receiver, name: str) -> None:
                while True:
                    await receiver.recv()
                    order.append(name)

            async with aio.open_receiver(flooded) as rf, aio.open_receiver(quiet) as rq:
                tasks = [asyncio.ensure_future(consume(rf, "f")), asyncio.ensure_future(consume(rq, "q"))]
                while "q" not in order:
                    await asyncio.sleep(0.01)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            assert order.index("q") <= 2 * aio.WAKEUP_LIMIT  # of 1,000 queued on the flooded socket

    run(main)


def test_an_icmp_error_is_raised_once_and_reading_goes_on(run) -> None:
    """Linux: ECONNREFUSED on a connected socket.  Windows: WSAECONNRESET even on an unconnected one."""
    if WINE:
        pytest.skip(
            f"{portmsg.PLATFORM} never reports ICMP errors (measured under Wine 8 and 10): only Linux and a real Windows host show this"
        )

    async def main() -> None:
        gone = _udp()
        port = gone.getsockname()[1]
        gone.close()
        with _udp() as conn:
            if sys.platform != "win32":
                conn.connect(("127.0.0.1", port))
            async with aio.open_receiver(conn) as receiver:
                conn.sendto(b"to nobody", ("127.0.0.1", port))  # an ICMP port unreachable comes back
                with pytest.raises((ConnectionRefusedError, ConnectionResetError)):
                    await asyncio.wait_for(receiver.recv(), 5)
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as back:
                    back.bind(("127.0.0.1", port))
                    back.sendto(b"still reading", conn.getsockname())
                    assert (await asyncio.wait_for(receiver.recv(), 5)).data == b"still reading"

    run(main)


def test_recv_many_takes_what_is_queued(run) -> None:
    async def main() -> None:
        with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            async with aio.open_receiver(rx) as receiver:
                _burst(tx, rx.getsockname(), 10)
                await asyncio.sleep(0.1)
                got = await receiver.recv_many(64)
                first = len(got)
                # On the Proactor a loaded machine may not have completed (and reposted) all ten yet.
                while len(got) < 10:
                    got += await asyncio.wait_for(receiver.recv_many(64), 5)
            assert first > 1  # one wait, then everything already queued
            assert [m.data for m in got] == [b"%d" % i for i in range(10)]

    run(main)


# -- sending --------------------------------------------------------------------------


def test_send_with_controls_arrives(run) -> None:
    async def main() -> None:
        with _udp() as rx, _udp() as tx:
            if Feature.HOP_LIMIT not in portmsg.enable(rx, Feature.HOP_LIMIT):
                pytest.skip(f"portmsg.enable() reports HOP_LIMIT unavailable on {portmsg.BACKEND}")
            try:
                assert await aio.send(tx, b"ttl", rx.getsockname(), controls=[portmsg.HopLimit(9)]) == 3
            except OSError as exc:
                if WINE:
                    pytest.skip(str(exc))
                raise
            async with aio.open_receiver(rx) as receiver:
                assert (await asyncio.wait_for(receiver.recv(), 5)).hop_limit == portmsg.HopLimit(9)

    run(main)


@pytest.mark.skipif(
    not hasattr(socket, "AF_UNIX") or sys.platform == "win32", reason="a full Unix datagram pair: POSIX"
)
def test_send_waits_for_room_instead_of_raising(run) -> None:
    async def main() -> None:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with a, b:
            a.setblocking(False)
            b.setblocking(False)
            try:
                while True:
                    a.send(b"f" * 512)
            except BlockingIOError:
                pass
            sending = asyncio.ensure_future(aio.send(a, b"late"))
            await asyncio.sleep(0.1)
            assert not sending.done()
            try:
                while True:
                    b.recv(1024)
            except BlockingIOError:
                pass
            assert await asyncio.wait_for(sending, 5) == 4

    run(main)


# -- sockets and loops -------------------------------------------------------------------


def test_a_transport_socket_is_accepted(run) -> None:
    async def main() -> None:
        with _udp() as own, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            wrapped = asyncio.trsock.TransportSocket(own)  # what transports hand out
            assert Feature.HOP_LIMIT in portmsg.enable(wrapped, Feature.HOP_LIMIT) or WINE
            tx.sendto(b"x", wrapped.getsockname())
            time.sleep(0.05)
            assert portmsg.recv(wrapped).data == b"x"
            assert portmsg.send(wrapped, b"y", tx.getsockname()) == 1
            async with aio.open_receiver(wrapped) as receiver:
                tx.sendto(b"z", wrapped.getsockname())
                assert (await asyncio.wait_for(receiver.recv(), 5)).data == b"z"
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
        try:
            wrapped = transport.get_extra_info("socket")
            assert type(wrapped) is not socket.socket
            if type(wrapped).__name__ == "PseudoSocket":  # uvloop keeps no socket.socket: refused, saying so
                with pytest.raises(TypeError, match="pass the socket itself"):
                    portmsg.enable(wrapped)
            else:  # the loop's own transport socket: options can be set on it
                assert Feature.HOP_LIMIT in portmsg.enable(wrapped, Feature.HOP_LIMIT) or WINE
        finally:
            transport.close()

    run(main)


def test_a_blocking_socket_is_refused() -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blocking:
            with pytest.raises(ValueError, match="non-blocking"):
                aio.open_receiver(blocking)
            with pytest.raises(ValueError, match="non-blocking"):
                await aio.send(blocking, b"x", ("127.0.0.1", 9))

    asyncio.run(main())


def test_the_proactor_guard_names_the_loop_and_the_way_out() -> None:
    class Stand:
        _proactor = type("NoRegister", (), {"_register_with_iocp": lambda self, obj: None})()

    with pytest.raises(NotImplementedError, match=r"Stand has no add_reader.*SelectorEventLoop"):
        portmsg._completion.proactor_of(Stand())  # type: ignore[arg-type]

    class Other:
        _proactor = type("OtherSignature", (), {"_register": lambda self, a, b: None, "_register_with_iocp": id})()

    with pytest.raises(NotImplementedError, match="Other"):
        portmsg._completion.proactor_of(Other())  # type: ignore[arg-type]


def test_the_same_socket_on_two_successive_loops(run) -> None:
    """Readiness works on every loop; on the Proactor the second loop cannot adopt the socket (Windows ties
    a handle to one completion port for good): the error is the OS's, raised when the receiver opens."""
    with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:

        async def once(payload: bytes) -> bytes:
            receiver = aio.open_receiver(rx)
            try:
                tx.sendto(payload, rx.getsockname())
                return (await asyncio.wait_for(receiver.recv(), 5)).data
            finally:
                receiver.close()

        assert run(once, b"first") == b"first"
        try:
            assert run(once, b"second") == b"second"
        except OSError as exc:
            assert getattr(exc, "winerror", None) == 87  # noqa: PT017 - ERROR_INVALID_PARAMETER, the Proactor's


@pytest.mark.skipif(sys.platform != "win32", reason="the completion engine is the ProactorEventLoop's")
def test_close_with_receives_in_flight_leaves_the_proactor_as_it_was() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        if not isinstance(loop, asyncio.ProactorEventLoop):
            pytest.skip("not the ProactorEventLoop")
        from portmsg._iocp import RecvOp

        def ours() -> int:
            return sum(isinstance(entry[1], RecvOp) for entry in loop._proactor._cache.values())  # type: ignore[attr-defined]

        with _udp() as rx:
            receiver = aio.open_receiver(rx, depth=8)
            await asyncio.sleep(0.05)
            assert ours() == 8
            receiver.close()
            for _ in range(50):
                await asyncio.sleep(0.01)
                if ours() == 0:
                    break
            assert ours() == 0

    asyncio.run(main())


@pytest.mark.skipif(sys.platform != "win32", reason="the completion engine is the ProactorEventLoop's")
def test_loop_close_with_receives_in_flight_returns_promptly() -> None:
    loop = asyncio.new_event_loop()
    rx = _udp()

    async def main() -> None:
        aio.open_receiver(rx, depth=4)
        await asyncio.sleep(0.05)

    loop.run_until_complete(main())
    start = time.monotonic()
    loop.close()
    assert time.monotonic() - start < 1
    rx.close()
    gc.collect()
