"""Request/response load: a minimal DNS responder on each endpoint, driven by dnsperf, side by side.

    bash tools/test.sh -e load                 # installs dnsperf and iproute2, then runs this
    python benchmarks/bench_load.py [--seconds 10] [--rounds 2] [--only portmsg]

Makes two network namespaces of its own joined by a veth pair: a server
with two addresses (192.0.2.1 and 192.0.2.2) and a client (192.0.2.100).
Each responder binds 0.0.0.0:53 and answers every query with one A record
(raw wire format: no DNS library in the loop), replies pinned to the
address asked where the endpoint can pin.  dnsperf asks 192.0.2.2, the
secondary address, in closed loop (200 queries outstanding, 8 client
sockets) and, once per endpoint, in open loop above capacity; beside it a
sampler asks both addresses from one socket and checks that every answer
came from the address asked (dnsperf does not check).  Printed: queries
per second, its ratio to asyncio's own endpoint on the same loop, wrong
sources seen by the sampler, and the responder's RSS before and after.
Rounds alternate the order of the endpoints.  Needs root (namespaces).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
SERVER_NS, CLIENT_NS = f"pm-load-srv-{os.getpid()}", f"pm-load-cli-{os.getpid()}"
PRIMARY, SECONDARY, CLIENT = "192.0.2.1", "192.0.2.2", "192.0.2.100"
PORT = 53
ENDPOINTS = [
    ("asyncio", "default"),
    ("portmsg", "default"),
    ("aiofastnet", "default"),
    ("asyncio", "uvloop"),
    ("portmsg", "uvloop"),
    ("aiofastnet", "uvloop"),
    ("portmsg.trio", "trio"),
]
_QUESTION = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01"
_ANSWER = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton("192.0.2.53")


def answer(query: bytes) -> bytes | None:
    """A reply with one A record for the query's first question; None for what is not a query."""
    if len(query) < 17 or query[2] & 0x80:
        return None
    end = 12
    while end < len(query) and query[end]:
        end += 1 + query[end]
    end += 5  # the root label, QTYPE, QCLASS
    if end > len(query):
        return None
    return query[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + query[12:end] + _ANSWER


# -- the responders (run inside the server namespace) ----------------------------------------------


class Responder(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.answered = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        reply = answer(data)
        if reply is not None:
            self.transport.sendto(reply, addr)
            self.answered += 1


async def serve_asyncio(kind: str) -> Responder:
    loop = asyncio.get_running_loop()
    local = ("0.0.0.0", PORT)  # the wildcard, as a multi-homed server binds
    if kind == "portmsg":
        from portmsg import aio

        transport, protocol = await aio.create_datagram_endpoint(Responder, local_addr=local)
        assert transport.get_extra_info("portmsg.reply_from_destination") is not False  # None: before that key
    elif kind == "aiofastnet":
        import aiofastnet

        transport, protocol = await aiofastnet.create_datagram_endpoint(loop, Responder, local_addr=local)
    else:
        transport, protocol = await loop.create_datagram_endpoint(Responder, local_addr=local)
    transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    return protocol


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def serve(kind: str, loop_name: str) -> None:
    """Answer until SIGTERM; print the count and RSS at start and end."""
    if kind == "portmsg.trio":
        serve_trio()
        return

    async def main() -> None:
        protocol = await serve_asyncio(kind)
        stop = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set_result, None)
        print(f"ready rss={rss_kib()}", flush=True)
        await stop
        print(f"answered={protocol.answered} rss={rss_kib()}", flush=True)

    if loop_name == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def serve_trio() -> None:
    import trio

    import portmsg
    from portmsg import Feature
    from portmsg import trio as ptrio

    async def main() -> None:
        sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        await sock.bind(("0.0.0.0", PORT))
        portmsg.enable(sock, Feature.PACKET_INFO)
        answered = 0
        print(f"ready rss={rss_kib()}", flush=True)
        with trio.open_signal_receiver(signal.SIGTERM) as signals:
            async with trio.open_nursery() as nursery:

                async def stop() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()

                nursery.start_soon(stop)
                with contextlib.suppress(trio.Cancelled):
                    while True:
                        for message in await ptrio.recv_batch(sock, 32):
                            reply = answer(message.data)
                            if reply is not None:
                                await ptrio.send(sock, reply, message.address, controls=message.reply_controls())
                                answered += 1
        print(f"answered={answered} rss={rss_kib()}", flush=True)

    trio.run(main)


# -- the sampler (inside the client namespace): does every answer come from where it was asked? ------


def sample(seconds: float) -> None:
    """Ask both server addresses from one socket, 100 times a second; print ok / wrong / lost."""
    ok = wrong = lost = 0
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.5)
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            asked = (PRIMARY, SECONDARY)[n % 2]
            query = struct.pack("!H", n & 0xFFFF) + _QUESTION
            sock.sendto(query, (asked, PORT))
            try:
                while True:
                    data, source = sock.recvfrom(512)
                    if data[:2] == query[:2]:
                        break
            except TimeoutError:
                lost += 1
            else:
                if source[0] == asked:
                    ok += 1
                else:
                    wrong += 1
            n += 1
            time.sleep(0.01)
    print(f"ok={ok} wrong={wrong} lost={lost}", flush=True)


# -- the driver (outside): namespaces, dnsperf, the table ------------------------------------------


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def setup_namespaces() -> None:
    sh("ip", "netns", "add", SERVER_NS)
    sh("ip", "netns", "add", CLIENT_NS)
    veth = ("pmload-s", "netns", SERVER_NS, "type", "veth", "peer", "name", "pmload-c", "netns", CLIENT_NS)
    sh("ip", "link", "add", *veth)
    for address in (PRIMARY, SECONDARY):
        sh("ip", "-n", SERVER_NS, "addr", "add", f"{address}/24", "dev", "pmload-s")
    sh("ip", "-n", CLIENT_NS, "addr", "add", f"{CLIENT}/24", "dev", "pmload-c")
    for ns, dev in ((SERVER_NS, "pmload-s"), (CLIENT_NS, "pmload-c")):
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "link", "set", dev, "up")


def teardown_namespaces() -> None:
    for ns in (SERVER_NS, CLIENT_NS):
        sh("ip", "netns", "del", ns, check=False)


def run_one(kind: str, loop_name: str, seconds: int, queries: Path, *, open_loop: int = 0) -> dict[str, Any]:
    """One responder under one dnsperf run: its figures."""
    server = subprocess.Popen(
        ["ip", "netns", "exec", SERVER_NS, sys.executable, str(HERE), "--serve", kind, loop_name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = server.stdout.readline()  # type: ignore[union-attr]
        if not ready.startswith("ready"):
            return {"error": (ready + server.stderr.read()).strip()[-300:]}  # type: ignore[union-attr]
        rss_before = int(ready.split("rss=")[1])
        sampler = subprocess.Popen(
            ["ip", "netns", "exec", CLIENT_NS, sys.executable, str(HERE), "--sample", str(seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        load = ["-Q", str(open_loop), "-q", "20000"] if open_loop else ["-q", "200"]
        perf = sh(
            "ip", "netns", "exec", CLIENT_NS, "dnsperf", "-s", SECONDARY, "-p", str(PORT), "-d", str(queries),
            "-l", str(seconds), "-c", "8", "-t", "2", *load, check=False,
        )  # fmt: skip
        sampled = sampler.communicate(timeout=seconds + 10)[0]
    finally:
        server.send_signal(signal.SIGTERM)
        out, err = server.communicate(timeout=20)
    qps = re.search(r"Queries per second:\s+([0-9.]+)", perf.stdout)
    sent = re.search(r"Queries sent:\s+([0-9]+)", perf.stdout)
    done = re.search(r"Queries completed:\s+([0-9]+)", perf.stdout)
    end = re.search(r"answered=(\d+) rss=(\d+)", out)
    checks = dict(re.findall(r"(\w+)=(\d+)", sampled))
    if qps is None or end is None:
        return {"error": (perf.stdout + perf.stderr + err).strip()[-300:]}
    return {
        "qps": float(qps.group(1)),
        "sent": int(sent.group(1)) if sent else 0,
        "completed": int(done.group(1)) if done else 0,
        "rss": (rss_before, int(end.group(2))),
        "checks": {k: int(v) for k, v in checks.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--open-qps", type=int, default=100000, help="open loop: queries per second offered")
    parser.add_argument("--only", action="append", help="endpoint kinds to run (default: all)")
    parser.add_argument("--serve", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--sample", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return 0
    if args.sample is not None:
        sample(args.sample)
        return 0
    missing = [tool for tool in ("dnsperf", "ip") if not shutil.which(tool)]
    if missing:
        print(f"bench_load: needs {' and '.join(missing)}: bash tools/test.sh -e load installs them", file=sys.stderr)
        return 2
    endpoints = [e for e in ENDPOINTS if not args.only or e[0] in args.only]
    results: dict[tuple[str, str], list[dict[str, Any]]] = {e: [] for e in endpoints}
    with tempfile.TemporaryDirectory() as folder:
        queries = Path(folder) / "queries"
        queries.write_text("".join(f"host{i}.example.com A\n" for i in range(1000)))
        teardown_namespaces()
        setup_namespaces()
        try:
            for round_ in range(args.rounds):
                order = endpoints if round_ % 2 == 0 else endpoints[::-1]
                for endpoint in order:
                    results[endpoint].append(run_one(*endpoint, args.seconds, queries))
                    print(f"# round {round_ + 1} {endpoint[0]} {endpoint[1]}: {results[endpoint][-1]}", file=sys.stderr)
            opened = {e: run_one(*e, max(5, args.seconds // 2), queries, open_loop=args.open_qps) for e in endpoints}
        finally:
            teardown_namespaces()
    print_table(results, opened, args)
    return 0


def print_table(
    results: dict[tuple[str, str], list[dict[str, Any]]], opened: dict[tuple[str, str], dict[str, Any]], args: Any
) -> None:
    print(f"\nDNS responder under dnsperf, {args.seconds} s closed loop x {args.rounds} rounds (200 outstanding),")
    print(f"then {max(5, args.seconds // 2)} s open loop at {args.open_qps} qps; CPython {platform.python_version()},")
    print(f"{os.cpu_count()} cores, {platform.platform()}")
    header = "endpoint                 loop      closed qps (median)  ratio  open: answered/s  wrong src  RSS KiB"
    print(header)
    medians: dict[tuple[str, str], float] = {}
    for endpoint, runs in results.items():
        good = sorted(r["qps"] for r in runs if "qps" in r)
        medians[endpoint] = statistics.median(good) if good else 0.0
    for (kind, loop_name), runs in results.items():
        reference = medians.get(("asyncio", loop_name if loop_name != "trio" else "default"), 0.0)
        ratio = medians[(kind, loop_name)] / reference if reference else 0.0
        opened_run = opened.get((kind, loop_name), {})
        answered = opened_run.get("completed", 0) / max(5, args.seconds // 2) if "qps" in opened_run else 0
        wrong = sum(r.get("checks", {}).get("wrong", 0) for r in runs)
        asked = sum(sum(r.get("checks", {}).values()) for r in runs)
        rss = "/".join(f"{r['rss'][0]}->{r['rss'][1]}" for r in runs if "rss" in r)
        errors = [r["error"] for r in runs if "error" in r]
        print(
            f"{kind:<24} {loop_name:<9} {medians[(kind, loop_name)]:>19,.0f}  {ratio:>5.2f}  {answered:>16,.0f}"
            f"  {wrong:>4}/{asked:<5} {rss}" + (f"  ERROR {errors[0]}" if errors else "")
        )


if __name__ == "__main__":
    sys.exit(main())
