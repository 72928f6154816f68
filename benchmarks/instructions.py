"""User-space instructions per datagram, under callgrind (stable to well under 1%).

    python benchmarks/instructions.py [--n 2000]

Runs each receive method in its own `valgrind --tool=callgrind` process:
once queueing n 64-byte datagrams and draining them, once only queueing
them, and reports the difference / n: the user-space instructions one
receive costs (the kernel's share is not counted), side by side.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
METHODS = [
    "stdlib recvmsg (raw)",
    "stdlib recvmsg + parse pktinfo",
    "portmsg.recvmsg",
    "portmsg.recv + .packet_info",
    "portmsg.recv_batch(32) + .packet_info",
]

CHILD = """
import sys
sys.path.insert(0, {here!r})
import bench_recv as b
rx, tx = b.make_pair()
method = b.METHODS[{name!r}]
for _ in range(64):
    tx.send(b"p" * 64)
method(rx, 64)
n = {n}
for _ in range(n):
    tx.send(b"p" * 64)
if {drain}:
    method(rx, n)
"""


def instructions(name: str, n: int, *, drain: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                CHILD.format(here=str(HERE), name=name, n=n, drain=drain),
            ],
            check=True,
            capture_output=True,
        )
        match = re.search(r"^summary:\s+(\d+)", out.read_text(), re.MULTILINE)
        assert match, "callgrind wrote no summary"
        return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install valgrind): no instruction counts")
        return 0
    base_name = "stdlib recvmsg + parse pktinfo"
    figures = {
        name: (instructions(name, args.n, drain=True) - instructions(name, args.n, drain=False)) / args.n
        for name in METHODS
    }
    print(f"{'method':<40} {'instructions/datagram':>22} {'ratio':>7}")
    for name, value in figures.items():
        print(f"{name:<40} {value:>22.0f} {value / figures[base_name]:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
