"""Side-by-side receive benchmark: the stdlib and portmsg in one process and one run.

    python benchmarks/bench_recv.py [--sizes 64 1200] [--rounds 15] [--json out.json]

Drain method: each round pre-queues N datagrams (IP_PKTINFO on, a large
SO_RCVBUF) on loopback, then times only the receive that drains them.
Methods take turns inside every round, so they share the machine's noise;
the table shows the median ns per datagram and the ratio to the stdlib's
recvmsg with the pktinfo parsed into (IPv4Address, ifindex), the work a
framework has to do by hand today.  That baseline is Linux's (the stdlib's
recvmsg parsing Linux's struct in_pktinfo); where the stdlib has no recvmsg
(Windows, Wine) the baseline is its recvfrom, which reads no metadata, and the
rows that need recvmsg are left out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import statistics
import struct
import sys
import time
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

import portmsg
from portmsg import Feature, aio, native

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

N = 1024
HAS_RECVMSG = hasattr(socket.socket, "recvmsg")
BASELINE = "stdlib recvmsg + parse pktinfo" if HAS_RECVMSG else "stdlib recvfrom (no metadata)"


def make_pair() -> tuple[socket.socket, socket.socket]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    try:
        rx.setsockopt(socket.SOL_SOCKET, force or socket.SO_RCVBUF, 32 << 20)
    except OSError:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    rx.setsockopt(native.IPPROTO_IP, native.IP_PKTINFO, 1)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.connect(rx.getsockname())
    return rx, tx


def stdlib_recvfrom(rx: socket.socket, n: int) -> None:
    recvfrom = rx.recvfrom
    for _ in range(n):
        recvfrom(2048)


def stdlib_raw(rx: socket.socket, n: int) -> None:
    recvmsg, space = rx.recvmsg, socket.CMSG_SPACE(12)
    for _ in range(n):
        recvmsg(2048, space)


_PKTINFO = struct.Struct("=i4s4s")


def stdlib_parsed(rx: socket.socket, n: int) -> None:
    recvmsg, space, unpack = rx.recvmsg, socket.CMSG_SPACE(12), _PKTINFO.unpack
    level, kind = native.IPPROTO_IP, native.IP_PKTINFO
    for _ in range(n):
        _data, ancdata, _flags, _addr = recvmsg(2048, space)
        for lvl, typ, payload in ancdata:
            if lvl == level and typ == kind:
                ifindex, _spec, dst = unpack(payload)
                info = (IPv4Address(dst), ifindex)
        assert info


def portmsg_recvmsg(rx: socket.socket, n: int) -> None:
    recvmsg, space = portmsg.recvmsg, portmsg.CMSG_SPACE(12)
    for _ in range(n):
        recvmsg(rx, 2048, space)


def portmsg_recvmsg_parsed(rx: socket.socket, n: int) -> None:
    recvmsg, space, unpack = portmsg.recvmsg, portmsg.CMSG_SPACE(12), _PKTINFO.unpack
    level, kind = native.IPPROTO_IP, native.IP_PKTINFO
    for _ in range(n):
        _data, ancdata, _flags, _addr = recvmsg(rx, 2048, space)
        for lvl, typ, payload in ancdata:
            if lvl == level and typ == kind:
                ifindex, _spec, dst = unpack(payload)
                info = (IPv4Address(dst), ifindex)
        assert info


def portmsg_recv(rx: socket.socket, n: int) -> None:
    recv = portmsg.recv
    for _ in range(n):
        assert recv(rx, 2048).packet_info


def portmsg_receiver(rx: socket.socket, n: int) -> None:
    recv = _receiver(rx).recv
    for _ in range(n):
        assert recv().packet_info


def portmsg_receiver_into(rx: socket.socket, n: int) -> None:
    recv_into = _receiver(rx).recv_into
    for _ in range(n):
        assert recv_into()[1].packet_info


_RECEIVERS: dict[int, portmsg.Receiver] = {}


def _receiver(rx: socket.socket) -> portmsg.Receiver:
    """One Receiver per socket for the whole run (made once, as a server would)."""
    if rx.fileno() not in _RECEIVERS:
        _RECEIVERS[rx.fileno()] = portmsg.Receiver(rx, bufsize=2048, buffer=bytearray(2048))
    return _RECEIVERS[rx.fileno()]


def portmsg_recv_into(rx: socket.socket, n: int) -> None:
    recv_into, buffer = portmsg.recv_into, memoryview(bytearray(2048))
    for _ in range(n):
        assert recv_into(rx, buffer)[1].packet_info


def portmsg_batch(rx: socket.socket, n: int) -> None:
    recv_batch = portmsg.recv_batch
    left = n
    while left:
        for message in recv_batch(rx, 32, 2048):
            assert message.packet_info
            left -= 1


_ASYNC: dict[str, Any] = {}
"""The receiver and the endpoint, each on an asyncio loop of its own, kept for the whole run: their
start-up is not what is measured.  Between its turns a loop stands still, so it reads nothing of the
other methods' datagrams."""


def _run(rx: socket.socket, name: str, coroutine: Coroutine[Any, Any, Any]) -> Any:
    loop = _ASYNC.get(name)
    if loop is None:
        loop = _ASYNC[name] = asyncio.new_event_loop()
    rx.setblocking(False)  # noqa: FBT003 - the other methods take it blocking, as the report's baseline does
    try:
        return loop.run_until_complete(coroutine)
    finally:
        rx.setblocking(True)  # noqa: FBT003


def aio_recv_many(rx: socket.socket, n: int) -> None:
    async def drain() -> None:
        if "receiver" not in _ASYNC:
            _ASYNC["receiver"] = await aio.open_receiver(rx, bufsize=2048, max_queued=4096).__aenter__()
        receiver, left = _ASYNC["receiver"], n
        while left:
            for message in await receiver.recv_many(64):
                assert message.packet_info
                left -= 1

    _run(rx, "receiver loop", drain())


def _close_async() -> None:
    """Close the kept receiver, endpoint and loops (before their socket closes)."""
    if "receiver" in _ASYNC:
        _ASYNC["receiver"].close()
    if "transport" in _ASYNC:
        _ASYNC["transport"].close()
    for name in ("receiver loop", "endpoint loop"):
        if name in _ASYNC:
            _ASYNC[name].run_until_complete(asyncio.sleep(0.01))  # connection_lost and the like run
            _ASYNC[name].close()
    _ASYNC.clear()
    _RECEIVERS.clear()


class _Batches(asyncio.DatagramProtocol):
    """Counts down what messages_received delivers (reading .packet_info), then sets `done`."""

    left = 0
    done: asyncio.Future[None] | None = None

    def messages_received(self, messages: list[portmsg.Message]) -> None:
        for message in messages:
            assert message.packet_info
        self.left -= len(messages)
        if self.left <= 0 and self.done is not None and not self.done.done():
            self.done.set_result(None)


def endpoint_messages(rx: socket.socket, n: int) -> None:
    async def drain() -> None:
        done = asyncio.get_running_loop().create_future()
        if "endpoint" not in _ASYNC:  # on a duplicate: the transport closes the socket it is given
            _Batches.left, _Batches.done = n, done  # it may read before create_datagram_endpoint returns
            _ASYNC["transport"], _ASYNC["endpoint"] = await aio.create_datagram_endpoint(_Batches, sock=rx.dup())
        else:
            _ASYNC["endpoint"].left, _ASYNC["endpoint"].done = n, done
        await done

    _run(rx, "endpoint loop", drain())


EIGHT_SENDERS = "portmsg.recv_batch(32) + .packet_info, 8 senders"

METHODS: dict[str, Callable[[socket.socket, int], None]] = {
    "stdlib recvmsg (raw)": stdlib_raw,
    "stdlib recvmsg + parse pktinfo": stdlib_parsed,
    "portmsg.recvmsg": portmsg_recvmsg,
    "portmsg.recvmsg + parse pktinfo": portmsg_recvmsg_parsed,
    "portmsg.recv + .packet_info": portmsg_recv,
    "portmsg.Receiver.recv() + .packet_info": portmsg_receiver,
    "portmsg.Receiver.recv_into() + .packet_info": portmsg_receiver_into,
    "portmsg.recv_into + .packet_info": portmsg_recv_into,
    "portmsg.recv_batch(32) + .packet_info": portmsg_batch,
    EIGHT_SENDERS: portmsg_batch,
    "aio Receiver.recv_many(64) + .packet_info": aio_recv_many,
    "aio endpoint messages_received + .packet_info": endpoint_messages,
}
if not HAS_RECVMSG:
    # Windows: no recvmsg rows (nor the parse of Linux's in_pktinfo), and no aio rows: the
    # Proactor's posted receives take datagrams while their loop stands still (the other rows'),
    # and a socket joins one IOCP only (the endpoint's duplicate could not).
    METHODS = {
        BASELINE: stdlib_recvfrom,
        **{name: method for name, method in METHODS.items() if "recvmsg" not in name and "aio" not in name},
    }
SENDERS = {EIGHT_SENDERS: 8}
"""Methods whose queue is filled by several senders taking turns (the others: by one)."""


def filler(rx: socket.socket, tx: socket.socket, name: str) -> Callable[[bytes, int], None]:
    """fill(payload, n): queue n datagrams on rx for method `name`, from tx and its extra senders in turn."""
    senders = [tx]
    for _ in range(SENDERS.get(name, 1) - 1):
        extra = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        extra.connect(rx.getsockname())
        senders.append(extra)

    def fill(payload: bytes, n: int) -> None:
        for i in range(n):
            senders[i % len(senders)].send(payload)

    return fill


def gro_rate(size: int, rounds: int) -> dict[str, float] | None:
    """Datagrams/s through the stdlib vs portmsg with a GSO sender and a GRO receiver."""
    rx, tx = make_pair()
    with rx, tx:
        if Feature.SEGMENT_OFFLOAD not in portmsg.enable(rx, Feature.SEGMENT_OFFLOAD):
            return None
        per_send = max(1, min(64, 65000 // size))
        burst = b"g" * (size * per_send)
        times = []
        for _ in range(rounds):
            for _ in range(N // per_send):
                portmsg.send(tx, burst, controls=[portmsg.SegmentSize(size)])
            start = time.perf_counter_ns()
            got = 0
            while got < (N // per_send) * per_send:
                message = portmsg.recv(rx, 65535)
                got += len(message.segments())
            times.append((time.perf_counter_ns() - start) / got)
        return {"ns": statistics.median(times)}


def memory_per_datagram(size: int, count: int = 2000) -> dict[str, float]:
    """Bytes held per received datagram (with its pktinfo): stdlib tuples vs portmsg Messages."""
    import tracemalloc

    payload = b"m" * size
    held: dict[str, float] = {}
    rx, tx = make_pair()
    with rx, tx:
        portmsg.enable(rx, Feature.PACKET_INFO)
        for name, receive in (
            ("stdlib recvmsg tuple", lambda: rx.recvmsg(2048, socket.CMSG_SPACE(12))),
            ("portmsg.recv Message", lambda: portmsg.recv(rx, 2048)),
        ):
            for _ in range(count):
                tx.send(payload)
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            kept = [receive() for _ in range(count)]
            held[name] = (tracemalloc.get_traced_memory()[0] - before) / count
            tracemalloc.stop()
            del kept
    return held


def run(size: int, rounds: int) -> dict[str, float]:
    payload = b"p" * size
    samples: dict[str, list[float]] = {name: [] for name in METHODS}
    rx, tx = make_pair()
    with rx, tx:
        fills = {name: filler(rx, tx, name) for name in METHODS}
        for name, method in METHODS.items():  # warm-up
            fills[name](payload, 64)
            method(rx, 64)
        for _ in range(rounds):
            for name, method in METHODS.items():
                fills[name](payload, N)
                start = time.perf_counter_ns()
                method(rx, N)
                samples[name].append((time.perf_counter_ns() - start) / N)
        _close_async()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 1200])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    report: dict[str, object] = {"python": sys.version.split()[0], "platform": portmsg.PLATFORM, "n": N, "sizes": {}}
    for size in args.sizes:
        figures = run(size, args.rounds)
        base = figures[BASELINE]
        print(f"\n{size}-byte datagrams, {N} per round, median of {args.rounds} rounds")
        print(f"{'method':<48} {'ns/datagram':>12} {'ratio':>7}")
        rows = {}
        for name, ns in figures.items():
            rows[name] = {"ns": round(ns, 1), "ratio": round(ns / base, 3)}
            print(f"{name:<48} {ns:>12.0f} {ns / base:>7.2f}")
        gro = gro_rate(size, max(3, args.rounds // 3))
        if gro is None:
            print(f"{'GRO path (GSO sender)':<48} {'unavailable on this platform':>20}")
        else:
            rows["GRO path (GSO sender), portmsg.recv + segments()"] = {
                "ns": round(gro["ns"], 1),
                "ratio": round(gro["ns"] / base, 3),
            }
            print(
                f"{'GRO path (GSO sender) recv+segments()':<48} {gro['ns']:>12.0f} {gro['ns'] / base:>7.2f}"
                f"   ({base / gro['ns']:.1f}x the stdlib's datagram rate)"
            )
        memory = memory_per_datagram(size) if HAS_RECVMSG else {}
        for name, held in memory.items():
            print(f"memory held: {name:<27} {held:>8.0f} bytes/datagram")
        report["sizes"][str(size)] = {"rows": rows, "memory_bytes": memory}  # type: ignore[index]
    if args.json:
        with open(args.json, "w") as handle:  # noqa: PTH123
            json.dump(report, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
