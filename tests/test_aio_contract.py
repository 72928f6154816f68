"""Receivers and senders on every loop and engine: waiters, cancellation, errors, concurrency, lifetime.

Each test is one promise of portmsg.aio / portmsg.trio (or one asyncio.Queue
and trio.socket already keep, held against them).  They run on every loop the
platform has; under Wine that includes the Proactor's completion engine.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import sys
import time
import warnings
from typing import Any

import pytest
from helpers import TIMEOUT

import portmsg
from portmsg import Feature, aio

WINE = portmsg.PLATFORM.startswith("wine")


def _udp(rcvbuf: int = 1 << 20) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    return sock


def _send(to: socket.socket, *payloads: bytes) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for payload in payloads:
            tx.sendto(payload, to.getsockname())
    time.sleep(0.05)  # queued before the loop looks: one wakeup sees them all


# -- 3. no waiter sleeps while data is queued ------------------------------------------------------


def test_every_waiting_task_wakes_when_as_many_datagrams_arrive_at_once(run) -> None:
    async def main() -> None:
        with _udp() as rx:
            async with aio.open_receiver(rx) as receiver:
                tasks = [asyncio.ensure_future(receiver.recv()) for _ in range(4)]
                await asyncio.sleep(0.05)
                _send(rx, b"a", b"b", b"c", b"d")
                done, pending = await asyncio.wait(tasks, timeout=2)
                assert not pending
                assert sorted(t.result().data for t in done) == [b"a", b"b", b"c", b"d"]

    run(main)


def test_a_task_cancelled_after_its_wakeup_passes_the_datagram_on(run) -> None:
    """asyncio.Queue's rule: a getter woken, then cancelled before it ran, wakes the next one.

    The finding's sequence (two yields, then the cancel) lands between the wakeup and the
    task's resumption on every loop measured; a run where the first task took the datagram
    before the cancel is retried, and never reaching the case fails the test.
    """

    async def main() -> None:
        with _udp() as rx:
            async with aio.open_receiver(rx) as receiver:
                for attempt in range(12):
                    first, second = asyncio.ensure_future(receiver.recv()), asyncio.ensure_future(receiver.recv())
                    await asyncio.sleep(0.05)
                    _send(rx, b"only one")
                    for _ in range(1 + attempt % 4):  # loops differ in when the wakeup lands
                        await asyncio.sleep(0)
                    first.cancel()
                    await asyncio.wait([first])
                    if first.cancelled():
                        assert (await asyncio.wait_for(second, 2)).data == b"only one"
                        return
                    second.cancel()  # the first took it in time: arrange it again
                    await asyncio.wait([second])
                pytest.fail("the first task always took the datagram before it could be cancelled")

    run(main)


def test_a_cancelled_or_timed_out_recv_many_loses_nothing(run) -> None:
    async def main() -> None:
        with _udp() as rx:
            async with aio.open_receiver(rx) as receiver:
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(receiver.recv_many(8), 0.1)
                _send(rx, b"1", b"2", b"3")
                assert [m.data for m in await asyncio.wait_for(receiver.recv_many(8), 2)] == [b"1", b"2", b"3"]

    run(main)


def test_recv_many_takes_at_most_max_messages_and_leaves_the_rest_in_order(run) -> None:
    """More queued than asked for: exactly max_messages, the oldest first; the rest stays for the next call."""

    async def main() -> None:
        with _udp() as rx:
            async with aio.open_receiver(rx, depth=32) as receiver:  # depth: the Proactor completes all 20 at once
                _send(rx, *(b"%d" % i for i in range(20)))
                await asyncio.sleep(0.2)  # the loop queues them before the first recv_many looks
                batches = [await asyncio.wait_for(receiver.recv_many(7), 2)]
                while sum(map(len, batches)) < 20:
                    batches.append(await asyncio.wait_for(receiver.recv_many(7), 2))
                assert [m.data for batch in batches for m in batch] == [b"%d" % i for i in range(20)]
                assert all(1 <= len(batch) <= 7 for batch in batches)
                assert len(batches[0]) == 7  # the 20 were queued before it looked

    run(main)


def test_recv_many_takes_one_or_more(run) -> None:
    async def main() -> None:
        with _udp() as rx:
            async with aio.open_receiver(rx) as receiver:
                with pytest.raises(ValueError, match="1 or more"):
                    await receiver.recv_many(0)

    run(main)


# -- 4. a raising owner never stops the engine -------------------------------------------------------


def test_the_engine_reads_on_when_a_protocol_raises_on_every_batch(run) -> None:
    """messages_received raising, one datagram at a time: the completion engine reposts before it delivers."""

    class Raising(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.got: list[bytes] = []

        def messages_received(self, messages: list[portmsg.Message]) -> None:
            self.got += [m.data for m in messages]
            msg = "every time"
            raise RuntimeError(msg)

    async def main() -> None:
        caught: list[Any] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: caught.append(context))
        transport, protocol = await aio.create_datagram_endpoint(Raising, local_addr=("127.0.0.1", 0), depth=2)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                for i in range(12):
                    tx.sendto(b"%d" % i, transport.get_extra_info("sockname"))
                    for _ in range(200):
                        if len(protocol.got) > i:
                            break
                        await asyncio.sleep(0.005)
            assert protocol.got == [b"%d" % i for i in range(12)]
            assert len(caught) >= 1
        finally:
            transport.close()

    run(main)


# -- 5. a queued error is delivered once, never polled for --------------------------------------------


def _errors_socket() -> socket.socket:
    rx = _udp()
    on = portmsg.enable(rx, Feature.ERRORS)
    if Feature.ERRORS not in on:
        rx.close()
        pytest.skip(f"portmsg.enable() reports ERRORS unavailable: {on.refused[Feature.ERRORS]}")
    return rx


def _provoke_icmp(sock: socket.socket) -> None:
    """An ICMP port unreachable, queued for sock (ERRORS on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sock.sendto(b"into the void", ("127.0.0.1", port))
    time.sleep(0.05)


def test_a_receiver_delivers_a_queued_error_once_and_does_not_spin(run) -> None:
    async def main() -> None:
        with _errors_socket() as rx:
            _provoke_icmp(rx)
            async with aio.open_receiver(rx) as receiver:
                with pytest.raises(ConnectionRefusedError) as raised:
                    await asyncio.wait_for(receiver.recv(), 2)
                assert raised.value.queued.error.offender is not None  # type: ignore[attr-defined]
                cpu = time.process_time()
                with pytest.raises(asyncio.TimeoutError):
                    await asyncio.wait_for(receiver.recv(), 0.5)  # nothing more: the error came once
                assert time.process_time() - cpu < 0.25  # a loop woken for ever by POLLERR would use it all
                _send(rx, b"after")
                assert (await asyncio.wait_for(receiver.recv(), 2)).data == b"after"

    run(main)


def test_an_endpoint_hears_a_queued_error_once_and_does_not_spin(run) -> None:
    class Errors(asyncio.DatagramProtocol):
        def __init__(self) -> None:
            self.errors: list[OSError] = []

        def error_received(self, exc: Exception) -> None:
            self.errors.append(exc)  # type: ignore[arg-type]

    async def main() -> None:
        transport, protocol = await aio.create_datagram_endpoint(
            Errors, local_addr=("127.0.0.1", 0), features=(Feature.ERRORS,)
        )
        try:
            if Feature.ERRORS not in transport.get_extra_info("portmsg.enabled"):
                pytest.skip(f"ERRORS unavailable: {transport.get_extra_info('portmsg.enabled').refused}")
            _provoke_icmp(transport.get_extra_info("socket")._sock)
            cpu = time.process_time()
            await asyncio.sleep(0.5)
            assert time.process_time() - cpu < 0.25
            assert [type(e) for e in protocol.errors] == [ConnectionRefusedError]
        finally:
            transport.close()

    run(main)


def test_a_blocking_receive_raises_a_queued_error_once_and_then_waits_without_polling() -> None:
    with _errors_socket() as rx:
        rx.settimeout(TIMEOUT)
        _provoke_icmp(rx)
        with pytest.raises(ConnectionRefusedError):
            portmsg.recv(rx)
        rx.settimeout(0.5)
        cpu = time.process_time()
        with pytest.raises(TimeoutError):
            portmsg.recv(rx)
        assert time.process_time() - cpu < 0.25


def test_a_blocking_receive_raises_a_queued_error_once_then_sleeps_until_data() -> None:
    """The stdlib's blocking recv sleeps; portmsg's, which waits in slices, must too (ERRORS on)."""
    import threading

    with _errors_socket() as rx:
        rx.setblocking(True)
        _provoke_icmp(rx)
        with pytest.raises(ConnectionRefusedError):
            portmsg.recv(rx)
        later = threading.Timer(0.4, _send, (rx, b"later"))
        later.start()
        cpu = time.process_time()
        assert portmsg.recv(rx).data == b"later"
        assert time.process_time() - cpu < 0.2
        later.join()


def test_trio_raises_a_queued_error_once_and_then_waits() -> None:
    trio = pytest.importorskip("trio")
    from portmsg import trio as ptrio

    async def main() -> None:
        with _errors_socket() as rx:
            _provoke_icmp(rx)
            with pytest.raises(ConnectionRefusedError):
                await ptrio.recv(rx)
            cpu = time.process_time()
            with trio.move_on_after(0.5):
                await ptrio.recv(rx)
            assert time.process_time() - cpu < 0.25

    if WINE:
        pytest.skip("no error queue under Wine")
    trio.run(main)


# -- 6. concurrent senders complete, in order ----------------------------------------------------------


def _full_unix_pair() -> tuple[socket.socket, socket.socket]:
    if not hasattr(socket, "AF_UNIX") or sys.platform == "win32":
        pytest.skip(
            "filling a datagram socket's send buffer needs an AF_UNIX pair (POSIX); "
            "Windows UDP sends on loopback complete at once (measured under Wine)"
        )
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    b.setblocking(False)
    while True:
        try:
            a.send(b"f" * 512)
        except BlockingIOError:
            return a, b


def _drain(sock: socket.socket) -> list[bytes]:
    got = []
    while True:
        try:
            got.append(sock.recv(1024))
        except BlockingIOError:
            return got


def test_concurrent_sends_on_a_full_socket_all_complete_in_order(run) -> None:
    async def main() -> None:
        a, b = _full_unix_pair()
        with a, b:
            tasks = [asyncio.ensure_future(aio.send(a, b"%d" % i)) for i in range(3)]
            await asyncio.sleep(0.05)
            assert not any(t.done() for t in tasks)
            got: list[bytes] = []
            for _ in range(200):
                got += _drain(b)
                if all(t.done() for t in tasks):
                    break
                await asyncio.sleep(0.01)
            got += _drain(b)
            assert [t.result() for t in tasks] == [1, 1, 1]
            assert [g for g in got if not g.startswith(b"f")] == [b"0", b"1", b"2"]

    run(main)


def test_a_cancelled_waiting_send_is_not_sent(run) -> None:
    async def main() -> None:
        a, b = _full_unix_pair()
        with a, b:
            kept, dropped = asyncio.ensure_future(aio.send(a, b"kept")), asyncio.ensure_future(aio.send(a, b"dropped"))
            await asyncio.sleep(0.05)
            dropped.cancel()
            await asyncio.wait([dropped])  # the cancellation has landed: the send is off the queue
            got: list[bytes] = []
            for _ in range(200):
                got += _drain(b)
                if kept.done():
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)
            got += _drain(b)
            assert kept.result() == 4
            assert b"dropped" not in got

    run(main)


@pytest.mark.skipif(sys.platform == "win32", reason="filling a datagram send buffer needs an AF_UNIX pair (POSIX)")
def test_trio_refuses_a_second_waiting_sender_as_trio_sockets_do() -> None:
    trio = pytest.importorskip("trio")
    from portmsg import trio as ptrio

    async def outcome(send: Any) -> list[str]:
        results: list[str] = []

        async def one(payload: bytes) -> None:
            try:
                await send(payload)
                results.append("sent")
            except trio.BusyResourceError:
                results.append("busy")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, b"1")
            await trio.sleep(0.05)
            nursery.start_soon(one, b"2")
            await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        return results

    async def main() -> None:
        a, b = _full_unix_pair()
        with a, b:
            ours = await outcome(lambda payload: ptrio.send(a, payload))
        a, b = _full_unix_pair()
        with a, b:
            theirs = await outcome(trio.socket.from_stdlib_socket(a).send)
        assert ours == theirs == ["busy"]

    trio.run(main)


# -- 7. bad arguments fail at the call -------------------------------------------------------------------


def test_bad_receivers_and_senders_fail_at_the_call(run) -> None:
    async def main() -> None:
        caught: list[Any] = []
        asyncio.get_running_loop().set_exception_handler(lambda _loop, context: caught.append(context))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.setblocking(False)
            with pytest.raises(TypeError, match="TCP"):
                aio.open_receiver(tcp)
            with pytest.raises(TypeError, match="TCP"):
                await aio.send(tcp, b"x")
        with _udp() as rx:
            with pytest.raises(ValueError, match="bufsize must be 0 or more"):
                aio.open_receiver(rx, bufsize=-1)
            with pytest.raises(TypeError, match=r"expected a socket\.socket"):
                aio.open_receiver(rx.fileno())
        closed = _udp()
        closed.close()
        with pytest.raises(OSError) as ours:
            aio.open_receiver(closed)
        with pytest.raises(OSError) as stdlib:
            closed.recv(1)
        assert ours.value.errno == stdlib.value.errno
        await asyncio.sleep(0.1)
        assert caught == []

    run(main)


# -- 9. one receiver per socket; a reused descriptor is left alone --------------------------------------


def test_a_second_receiver_on_a_socket_is_refused_until_the_first_closes(run) -> None:
    async def main() -> None:
        with _udp() as rx:
            first = aio.open_receiver(rx)
            with pytest.raises(RuntimeError, match="already has a receiver"):
                aio.open_receiver(rx)
            with pytest.raises(RuntimeError, match="already has a receiver"):
                await aio.create_datagram_endpoint(asyncio.DatagramProtocol, sock=rx)
            _send(rx, b"to the first")
            assert (await asyncio.wait_for(first.recv(), 2)).data == b"to the first"
            first.close()
            async with aio.open_receiver(rx) as second:
                _send(rx, b"to the second")
                assert (await asyncio.wait_for(second.recv(), 2)).data == b"to the second"

    run(main)


def test_a_receiver_of_a_closed_socket_leaves_the_next_socket_on_its_number_alone(run) -> None:
    async def main() -> None:
        if sys.platform == "win32":
            pytest.skip(
                "Windows' select() fails the whole SelectorEventLoop when a watched socket is closed "
                "(documented: close the receiver first); Winsock handles are not reused at once"
            )
        old = _udp()
        stale = aio.open_receiver(old)
        await asyncio.sleep(0.05)
        number = old.fileno()
        old.close()
        new = _udp()
        try:
            assert new.fileno() == number  # the kernel hands out the lowest free number
            async with aio.open_receiver(new) as receiver:
                _send(new, b"new socket")
                assert (await asyncio.wait_for(receiver.recv(), 2)).data == b"new socket"
                await asyncio.sleep(0.4)  # the old receiver notices its socket is gone meanwhile
                _send(new, b"still heard")
                assert (await asyncio.wait_for(receiver.recv(), 2)).data == b"still heard"
            with pytest.raises(OSError):
                await asyncio.wait_for(stale.recv(), 2)
        finally:
            new.close()

    run(main)


# -- 10. unclosed receivers warn -------------------------------------------------------------------


def test_an_unclosed_receiver_warns_once_its_loop_is_gone() -> None:
    loop = asyncio.new_event_loop()
    rx = _udp()

    async def make() -> None:
        aio.open_receiver(rx)

    loop.run_until_complete(make())
    loop.close()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        gc.collect()
    rx.close()
    assert any(issubclass(w.category, ResourceWarning) and "unclosed portmsg Receiver" in str(w.message) for w in seen)


def test_a_one_shot_send_keeps_no_engine(run) -> None:
    async def main() -> None:
        from portmsg import _engines

        with _udp() as rx, _udp() as tx:
            for _ in range(3):
                await aio.send(tx, b"x", rx.getsockname())
            assert tx.fileno() not in _engines._ENGINES.get(asyncio.get_running_loop(), {})

    run(main)


# -- a one-shot receive, as trio has --------------------------------------------------------------


def test_a_one_shot_recv_takes_exactly_one_datagram(run) -> None:
    async def main() -> None:
        with _udp() as rx:
            portmsg.enable(rx, Feature.PACKET_INFO)
            waiting = asyncio.ensure_future(aio.recv(rx))
            await asyncio.sleep(0.05)
            _send(rx, b"first", b"second")
            first = await asyncio.wait_for(waiting, 2)
            assert first.data == b"first"
            assert first.packet_info is None or str(first.packet_info.address) == "127.0.0.1"
            assert (await asyncio.wait_for(aio.recv(rx), 2)).data == b"second"  # not read by the first call
            async with aio.open_receiver(rx) as receiver:  # nothing left behind holds the socket
                _send(rx, b"third")
                assert (await asyncio.wait_for(receiver.recv(), 2)).data == b"third"

    run(main)


def test_a_cancelled_one_shot_recv_loses_nothing(run) -> None:
    async def main() -> None:
        with _udp() as rx:
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(aio.recv(rx), 0.1)
            _send(rx, b"after a timeout")
            assert (await asyncio.wait_for(aio.recv(rx), 2)).data == b"after a timeout"
            if aio.is_proactor(asyncio.get_running_loop()):
                return  # the late case below is documented as lossy on the Proactor
            exercised = 0
            for attempt in range(12):  # the datagram arrives, then the task is cancelled before it runs
                task = asyncio.ensure_future(aio.recv(rx))
                await asyncio.sleep(0.05)
                _send(rx, b"late %d" % attempt)
                for _ in range(1 + attempt % 4):
                    await asyncio.sleep(0)
                task.cancel()
                await asyncio.wait([task])
                if task.cancelled():
                    assert (await asyncio.wait_for(aio.recv(rx), 2)).data == b"late %d" % attempt
                    exercised += 1
                else:
                    assert task.result().data == b"late %d" % attempt
            assert exercised  # some runs were cancelled (before or after the datagram was read): none lost it

    run(main)


# -- asyncio's shape: sock_recvmsg next to loop.sock_recvfrom ---------------------------------------


def test_sock_recvmsg_waits_then_gives_what_recvmsg_gives(run) -> None:
    async def main() -> None:
        with _udp() as rx:
            portmsg.enable(rx, Feature.PACKET_INFO)
            waiting = asyncio.ensure_future(aio.sock_recvmsg(rx, 100, portmsg.CMSG_SPACE(64)))
            await asyncio.sleep(0.05)
            assert not waiting.done()
            _send(rx, b"level one", b"again")
            data, ancdata, flags, address = await asyncio.wait_for(waiting, 2)
            rx.settimeout(2)
            expected = portmsg.recvmsg(rx, 100, portmsg.CMSG_SPACE(64))  # the same sender, the same controls
            rx.setblocking(False)
            assert data == b"level one"
            assert (ancdata, flags, address) == (expected[1], expected[2], expected[3])
            with pytest.raises(ValueError, match="negative buffer size"):
                await aio.sock_recvmsg(rx, -1)
            _send(rx, b"cut")
            cut = await asyncio.wait_for(aio.sock_recvmsg(rx, 2), 2)
            assert cut[0] == b"cu"
            assert portmsg.MsgFlag.from_native(cut[2]) & portmsg.MsgFlag.TRUNC

    run(main)
