"""Soak: a million datagrams through recv and recv_batch with every feature on.

    python benchmarks/soak.py [--datagrams 1000000]

Sends in bursts the receiver drains before the next (loopback drops datagrams
when the receive buffer overflows, which would say nothing about portmsg),
checks that the count received equals the count sent and that every payload
arrived intact, and reports RSS after warm-up and at the end.
"""

from __future__ import annotations

import argparse
import resource
import socket
import sys
import time

import portmsg

BURST = 256


def rss_kib() -> int:
    """Current resident set size in KiB (Linux /proc), else the peak."""
    try:
        with open("/proc/self/status") as status:  # noqa: PTH123
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def soak(total: int, *, batch: bool) -> dict[str, float]:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        enabled = portmsg.enable(rx)
        tx.connect(rx.getsockname())
        sent = received = bad = 0
        warm = None
        start = time.perf_counter()
        while sent < total:
            burst = min(BURST, total - sent)
            for i in range(sent, sent + burst):
                tx.send(i.to_bytes(8, "big") * 8)
            sent += burst
            goal = received + burst
            while received < goal:
                messages = portmsg.recv_batch(rx, 64) if batch else [portmsg.recv(rx)]
                for message in messages:
                    if message.data != received.to_bytes(8, "big") * 8 or message.packet_info is None:
                        bad += 1
                    received += 1
            if warm is None and received >= min(100_000, total // 2):
                warm = rss_kib()
        seconds = time.perf_counter() - start
    return {
        "sent": sent,
        "received": received,
        "bad": bad,
        "features": len(enabled),
        "rss_warm_kib": warm or rss_kib(),
        "rss_end_kib": rss_kib(),
        "datagrams_per_s": received / seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datagrams", type=int, default=1_000_000)
    args = parser.parse_args()
    ok = True
    for name, batch in (("recv", False), ("recv_batch(64)", True)):
        r = soak(args.datagrams, batch=batch)
        ok &= r["sent"] == r["received"] and not r["bad"]
        print(
            f"{name:<15} sent {r['sent']:>9,} received {r['received']:>9,} bad {r['bad']} "
            f"({r['features']} features on)  RSS after warm-up {r['rss_warm_kib']:,} KiB, "
            f"at the end {r['rss_end_kib']:,} KiB  ({r['datagrams_per_s']:,.0f}/s)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
