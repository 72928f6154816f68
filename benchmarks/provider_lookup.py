"""What the Windows backend's WSARecvMsg pointer lookup costs (run on Windows / under Wine).

    python tools/wine_leg.py run benchmarks/provider_lookup.py

Compares, in one run: the per-socket cache hit the receive path takes, the
uncached lookup (SO_PROTOCOL_INFOW + two WSAIoctl calls), and one whole
recvmsg of a 64-byte datagram on loopback.
"""

from __future__ import annotations

import socket
import sys
import time

import portmsg

if portmsg.BACKEND != "winsock":
    sys.exit("provider_lookup.py measures the Windows backend; run it under Windows or Wine")

impl = portmsg._api.IMPL  # noqa: SLF001
ffi, lib = impl.ffi, impl.lib  # type: ignore[attr-defined]
N = 20000


def per_call(fn: object, n: int = N) -> float:
    start = time.perf_counter_ns()
    for _ in range(n):
        fn()  # type: ignore[operator]
    return (time.perf_counter_ns() - start) / n


with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
    rx.bind(("127.0.0.1", 0))
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    fd = rx.fileno()
    error = ffi.new("int *")
    catalog = ffi.new("unsigned long *")

    def uncached() -> None:
        lib.pm_provider_id(fd, catalog, error)
        lib.pm_extension(fd, 0, error)
        lib.pm_extension(fd, 1, error)

    cached_ns = per_call(lambda: impl.provider_functions(rx, fd))  # type: ignore[attr-defined]
    uncached_ns = per_call(uncached, 5000)
    rounds = 2000
    for _ in range(rounds):
        tx.sendto(b"x" * 64, rx.getsockname())
    start = time.perf_counter_ns()
    for _ in range(rounds):
        portmsg.recvmsg(rx, 2048)
    recv_ns = (time.perf_counter_ns() - start) / rounds

print(f"platform: {portmsg.PLATFORM}")
print(f"{'what':<46} {'ns/call':>10} {'vs recvmsg':>10}")
for name, ns in (
    ("per-socket cache hit (what recvmsg pays)", cached_ns),
    ("uncached: SO_PROTOCOL_INFOW + 2x WSAIoctl", uncached_ns),
    ("portmsg.recvmsg, 64-byte datagram", recv_ns),
):
    print(f"{name:<46} {ns:>10.0f} {ns / recv_ns:>10.2f}")
