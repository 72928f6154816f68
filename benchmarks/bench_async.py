"""Async receive benchmark: datagrams with metadata through portmsg.aio and portmsg.trio, side by side.

    python benchmarks/bench_async.py [--n 2048] [--rounds 9]

Each round pre-queues N 64-byte datagrams on loopback (IP_PKTINFO on) and
times draining them: the synchronous recv_batch(32) loop (the floor), the
aio Receiver's recv_many() and recv() on every loop this platform has, trio,
asyncio's own create_datagram_endpoint with a DatagramProtocol (which delivers
no metadata at all) and portmsg's endpoint with that same protocol (replies
pinned or not) and with messages_received.  The table shows median ns per datagram and
the ratio to the synchronous recv_batch, and on Linux to bench_recv.py's baseline (the stdlib's
recvmsg with the pktinfo parsed by hand, same run).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import struct
import sys
import time
from typing import TYPE_CHECKING, Any

import portmsg
from portmsg import Feature, aio, native

if TYPE_CHECKING:
    from collections.abc import Callable

BASELINE = "sync recv_batch(32)"
STDLIB = "sync stdlib recvmsg + parse pktinfo"


def make_pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)  # noqa: FBT003
    portmsg.enable(rx, Feature.PACKET_INFO)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    return rx, tx


def fill(tx: socket.socket, n: int) -> None:
    for i in range(n):
        tx.send(b"p" * 64)
        if i % 256 == 255:
            time.sleep(0.001)  # loopback drops what a full buffer cannot take


def sync_batch(rx: socket.socket, n: int) -> float:
    start = time.perf_counter_ns()
    got = 0
    while got < n:
        try:
            batch = portmsg.recv_batch(rx, 32, 2048)
        except BlockingIOError:
            continue
        for message in batch:
            assert message.packet_info
        got += len(batch)
    return time.perf_counter_ns() - start


def stdlib_parsed(rx: socket.socket, n: int) -> float:
    """bench_recv.py's baseline: the stdlib's recvmsg, the pktinfo parsed by hand (Linux's layout)."""
    from ipaddress import IPv4Address

    unpack, space = struct.Struct("=i4s4s").unpack, socket.CMSG_SPACE(12)
    level, kind = socket.IPPROTO_IP, native.IP_PKTINFO
    start = time.perf_counter_ns()
    for _ in range(n):
        _data, ancdata, _flags, _addr = rx.recvmsg(2048, space)
        for lvl, typ, payload in ancdata:
            if lvl == level and typ == kind:
                ifindex, _spec, dst = unpack(payload)
                info = (IPv4Address(dst), ifindex)
        assert info
    return time.perf_counter_ns() - start


def loops() -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:
    found: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio default": asyncio.new_event_loop}
    if sys.platform == "win32":
        found["asyncio selector"] = asyncio.SelectorEventLoop
    else:
        try:
            import uvloop

            found["uvloop"] = uvloop.new_event_loop
        except ImportError:
            pass
    return found


async def aio_many(rx: socket.socket, n: int) -> float:
    start = time.perf_counter_ns()
    got = 0
    async with aio.open_receiver(rx, bufsize=2048, max_queued=4096, depth=8) as receiver:
        while got < n:
            batch = await receiver.recv_many(64)
            for message in batch:
                assert message.packet_info
            got += len(batch)
    return time.perf_counter_ns() - start


async def aio_one(rx: socket.socket, n: int) -> float:
    start = time.perf_counter_ns()
    async with aio.open_receiver(rx, bufsize=2048, max_queued=4096, depth=8) as receiver:
        for _ in range(n):
            assert (await receiver.recv()).packet_info
    return time.perf_counter_ns() - start


def _counter(n: int, done: asyncio.Future[None]) -> type[asyncio.DatagramProtocol]:
    """One protocol for both endpoints: counts datagram_received calls (and Messages, when it gets them)."""
    count = [0]

    class Counter(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: Any) -> None:  # noqa: ARG002
            count[0] += 1
            if count[0] == n and not done.done():
                done.set_result(None)

    return Counter


async def _drain(make_endpoint: Any, protocol: Any, rx: socket.socket, done: asyncio.Future[None], **kw: Any) -> float:
    start = time.perf_counter_ns()
    transport, _ = await make_endpoint(protocol, sock=rx.dup(), **kw)  # the transport closes the socket it is given
    try:
        await done
    finally:
        transport.close()
    return time.perf_counter_ns() - start


async def stdlib_protocol(rx: socket.socket, n: int) -> float:
    """asyncio's own create_datagram_endpoint: datagram_received(data, addr), no metadata."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    return await _drain(loop.create_datagram_endpoint, _counter(n, done), rx, done)


async def endpoint_plain(rx: socket.socket, n: int) -> float:
    """portmsg's endpoint, the same protocol: the one-line switch."""
    done = asyncio.get_running_loop().create_future()
    return await _drain(aio.create_datagram_endpoint, _counter(n, done), rx, done)


async def endpoint_pinned(rx: socket.socket, n: int) -> float:
    """The same, with replies pinned per peer (what a wildcard-bound socket gets by default)."""
    done = asyncio.get_running_loop().create_future()
    return await _drain(aio.create_datagram_endpoint, _counter(n, done), rx, done, reply_from_destination=True)


async def endpoint_messages(rx: socket.socket, n: int) -> float:
    """portmsg's endpoint delivering Messages in batches (messages_received)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = [0]

    class Batches(asyncio.DatagramProtocol):
        def messages_received(self, messages: list[portmsg.Message]) -> None:
            for message in messages:
                assert message.packet_info
            count[0] += len(messages)
            if count[0] >= n and not done.done():
                done.set_result(None)

    return await _drain(aio.create_datagram_endpoint, Batches, rx, done)


def trio_batch(rx: socket.socket, n: int) -> float | None:
    try:
        import trio

        import portmsg.trio as ptrio
    except ImportError:
        return None

    async def main() -> float:
        start = time.perf_counter_ns()
        got = 0
        while got < n:
            batch = await ptrio.recv_batch(rx, 32, 2048)
            for message in batch:
                assert message.packet_info
            got += len(batch)
        return time.perf_counter_ns() - start

    try:
        result: float = trio.run(main)
    except OSError:  # trio.run under Wine 8 needs the test shim (tests/test_trio.py)
        return None
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    n = args.n
    methods: dict[str, Callable[[socket.socket], float | None]] = {BASELINE: lambda rx: sync_batch(rx, n)}
    if hasattr(socket.socket, "recvmsg") and sys.platform == "linux":
        methods[STDLIB] = lambda rx: stdlib_parsed(rx, n)
    for name, factory in loops().items():
        kinds = (
            ("recv_many", aio_many),
            ("recv", aio_one),
            ("asyncio's endpoint, datagram_received", stdlib_protocol),
            ("portmsg endpoint, datagram_received", endpoint_plain),
            ("portmsg endpoint, pinned replies", endpoint_pinned),
            ("portmsg endpoint, messages_received", endpoint_messages),
        )
        for label, coroutine in kinds:

            def run(rx: socket.socket, factory: Any = factory, coroutine: Any = coroutine) -> float:
                loop = factory()
                try:
                    result: float = loop.run_until_complete(coroutine(rx, n))
                finally:
                    loop.close()
                return result

            methods[f"{name}: {label}"] = run
    methods["trio: recv_batch"] = lambda rx: trio_batch(rx, n)
    samples: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.rounds):
        for name, method in methods.items():
            # A fresh pair each time: Windows ties a socket to one loop's completion port for good.
            rx, tx = make_pair()
            with rx, tx:
                fill(tx, n)
                time.sleep(0.1)  # every datagram queued before the clock starts (Wine's sends lag)
                elapsed = method(rx)
            if elapsed is not None:
                samples[name].append(elapsed / n)
    base = statistics.median(samples[BASELINE])
    stdlib = statistics.median(samples[STDLIB]) if samples.get(STDLIB) else None
    print(f"\n{n} datagrams of 64 bytes with IP_PKTINFO, {portmsg.PLATFORM}, median of {args.rounds} rounds")
    print(f"{'method':<64} {'ns/datagram':>12} {'ratio':>7} {'/stdlib':>8}")
    for name, values in samples.items():
        if values:
            ns = statistics.median(values)
            versus = f"{ns / stdlib:>8.2f}" if stdlib else f"{'-':>8}"
            print(f"{name:<64} {ns:>12.0f} {ns / base:>7.2f} {versus}")
        else:
            print(f"{name:<64} {'unavailable':>12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
