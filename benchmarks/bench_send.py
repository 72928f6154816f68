"""Send micro-benchmark: one datagram per call, portmsg beside the stdlib, side by side in one run.

    python benchmarks/bench_send.py [--n 20000] [--rounds 7]

Each method sends N 64-byte datagrams to a loopback receiver (which drops
what it cannot hold: only the send is timed) from a socket bound to the
wildcard, so a source address is a real choice.  Rows with controls send
IP_PKTINFO naming 127.0.0.1; the stdlib's sendmsg gets the same bytes
portmsg encodes.  The pinned rows answer a peer whose datagram arrived at
127.0.0.1, as a wildcard-bound server does (`transport.sendto(data, peer)`).
Printed: median ns per datagram and ratios to the stdlib call doing the
same work (sendto for plain sends, sendmsg with the same control bytes for
sends with a source).  The round-trip rows time a lone request (one
outstanding, from a blocking client in a thread) through each endpoint's
echo: what holding replies until a batch's callbacks return costs.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from ipaddress import IPv4Address
from typing import Any

import portmsg
from portmsg import Feature, PacketInfo, aio

PAYLOAD = b"p" * 64


def make_sockets() -> tuple[socket.socket, socket.socket, tuple[str, int]]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
    rx.bind(("127.0.0.1", 0))
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.bind(("0.0.0.0", 0))
    return rx, tx, rx.getsockname()


def timed(call: Any, n: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        call()
    return (time.perf_counter_ns() - start) / n


def drain(rx: socket.socket) -> None:
    rx.setblocking(False)  # noqa: FBT003
    try:
        while True:
            rx.recv(2048)
    except BlockingIOError:
        pass


def sync_methods(tx: socket.socket, to: tuple[str, int]) -> dict[str, Any]:
    pktinfo = [PacketInfo(IPv4Address("127.0.0.1"), 0)]
    ancdata = portmsg.encode(pktinfo, socket.AF_INET)
    return {
        "stdlib sock.sendto": lambda: tx.sendto(PAYLOAD, to),
        "portmsg.send, no controls": lambda: portmsg.send(tx, PAYLOAD, to),
        "stdlib sock.sendmsg + IP_PKTINFO bytes": lambda: tx.sendmsg([PAYLOAD], ancdata, 0, to),
        "portmsg.send, controls=[PacketInfo]": lambda: portmsg.send(tx, PAYLOAD, to, controls=pktinfo),
    }


async def transport_rows(n: int, loop_name: str) -> dict[str, float]:
    """transport.sendto() to a peer: asyncio's own, portmsg's plain and portmsg's pinned."""
    rows: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)  # noqa: FBT003
        for name, make, kwargs in (
            ("asyncio's transport.sendto", loop.create_datagram_endpoint, {}),
            ("portmsg transport.sendto, unpinned", aio.create_datagram_endpoint, {"reply_from_destination": False}),
            ("portmsg transport.sendto, pinned", aio.create_datagram_endpoint, {}),
        ):
            transport, _ = await make(asyncio.DatagramProtocol, local_addr=("0.0.0.0", 0), **kwargs)
            if "pinned" in name and "unpinned" not in name:
                assert transport.get_extra_info("portmsg.reply_from_destination")
                assert Feature.PACKET_INFO in transport.get_extra_info("portmsg.enabled")
            port = transport.get_extra_info("sockname")[1]
            peer.sendto(b"ask", ("127.0.0.1", port))  # the peer's datagram: where replies are pinned to
            await asyncio.sleep(0.05)
            to = peer.getsockname()
            send = transport.sendto
            rows[f"{loop_name}: {name}"] = timed(lambda send=send, to=to: send(PAYLOAD, to), n)
            drain(peer)
            transport.close()
            await asyncio.sleep(0)
    return rows


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


async def round_trips(n: int, loop_name: str) -> dict[str, float]:
    """A lone request's round trip (one outstanding, blocking client in a thread): what batching replies costs."""
    import threading

    rows: dict[str, float] = {}
    loop = asyncio.get_running_loop()
    for name, make, kwargs in (
        ("asyncio's endpoint", loop.create_datagram_endpoint, {}),
        ("portmsg endpoint, batch_replies=True", aio.create_datagram_endpoint, {}),
        ("portmsg endpoint, batch_replies=False", aio.create_datagram_endpoint, {"batch_replies": False}),
    ):
        transport, _ = await make(Echo, local_addr=("127.0.0.1", 0), **kwargs)
        server = transport.get_extra_info("sockname")
        elapsed: list[float] = []

        def client(server: tuple[str, int] = server, elapsed: list[float] = elapsed) -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.settimeout(5)
                sock.connect(server)
                start = time.perf_counter_ns()
                for _ in range(n // 10):
                    sock.send(PAYLOAD)
                    sock.recv(2048)
                elapsed.append((time.perf_counter_ns() - start) / (n // 10))

        thread = threading.Thread(target=client)
        thread.start()
        while thread.is_alive():
            await asyncio.sleep(0.005)
        rows[f"{loop_name}: round trip, {name}"] = elapsed[0]
        transport.close()
        await asyncio.sleep(0)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    rx, tx, to = make_sockets()
    methods = sync_methods(tx, to)
    results: dict[str, list[float]] = {}
    loops = [("default", asyncio.new_event_loop)]
    try:
        import uvloop

        loops.append(("uvloop", uvloop.new_event_loop))
    except ImportError:
        pass
    for _ in range(args.rounds):
        for name, call in methods.items():
            results.setdefault(name, []).append(timed(call, args.n))
            drain(rx)
        for loop_name, factory in loops:
            loop = factory()
            try:
                for name, value in loop.run_until_complete(transport_rows(args.n, loop_name)).items():
                    results.setdefault(name, []).append(value)
                for name, value in loop.run_until_complete(round_trips(args.n, loop_name)).items():
                    results.setdefault(name, []).append(value)
            finally:
                loop.close()
    medians = {name: statistics.median(values) for name, values in results.items()}
    plain, with_source = medians["stdlib sock.sendto"], medians["stdlib sock.sendmsg + IP_PKTINFO bytes"]
    print(f"\n{args.n} sends of 64 bytes per method, median of {args.rounds} rounds, {portmsg.PLATFORM}")
    print(f"{'method':<58}{'ns/datagram':>12}{'vs sendto':>11}{'vs sendmsg':>12}")
    for name, value in medians.items():
        print(f"{name:<58}{value:>12,.0f}{value / plain:>11.2f}{value / with_source:>12.2f}")


if __name__ == "__main__":
    main()
