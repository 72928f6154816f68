"""Sending through a datagram endpoint: asyncio's own transport, portmsg's, and portmsg's with gso=True.

    python benchmarks/bench_endpoint_send.py [--n 20000] [--size 1200] [--burst 16] [--rounds 7]

Each round sends N datagrams of SIZE bytes to one loopback peer, BURST per loop
iteration (as a QUIC stack sends a flight), and times until the transport's
write buffer is empty.  The receiver never reads (the kernel drops what does
not fit): this is the sender's cost alone.  Median ns per datagram, and the
ratio to asyncio's own transport in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from typing import Any

import portmsg
from portmsg import aio

BASELINE = "asyncio's endpoint"


async def _send(make_endpoint: Any, peer: Any, n: int, size: int, burst: int, **kw: Any) -> float:
    transport, _ = await make_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), **kw)
    payload = b"q" * size
    try:
        start = time.perf_counter_ns()
        for _ in range(n // burst):
            for _ in range(burst):
                transport.sendto(payload, peer)
            await asyncio.sleep(0)
        while transport.get_write_buffer_size():
            await asyncio.sleep(0)
        return time.perf_counter_ns() - start
    finally:
        transport.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--size", type=int, default=1200)
    parser.add_argument("--burst", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    gso = hasattr(portmsg.native, "UDP_SEGMENT")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind(("127.0.0.1", 0))
        peer = sink.getsockname()

        async def own() -> float:
            return await _send(asyncio.get_running_loop().create_datagram_endpoint, peer, args.n, args.size, args.burst)

        methods: dict[str, Any] = {
            BASELINE: own,
            "portmsg endpoint": lambda: _send(aio.create_datagram_endpoint, peer, args.n, args.size, args.burst),
        }
        if gso:
            methods["portmsg endpoint, gso=True"] = lambda: _send(
                aio.create_datagram_endpoint, peer, args.n, args.size, args.burst, gso=True
            )
        samples: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(args.rounds):
            for name, method in methods.items():
                samples[name].append(asyncio.run(method()) / args.n)
    base = statistics.median(samples[BASELINE])
    print(
        f"\n{args.n} datagrams of {args.size} bytes to one peer, {args.burst} per loop iteration, "
        f"{portmsg.PLATFORM}, median of {args.rounds} rounds"
    )
    print(f"{'method':<32} {'ns/datagram':>12} {'ratio':>7}")
    for name, values in samples.items():
        ns = statistics.median(values)
        print(f"{name:<32} {ns:>12.0f} {ns / base:>7.2f}")
    if not gso:
        print("gso=True: unavailable here (no UDP_SEGMENT)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
