"""User-space instructions per datagram, under callgrind (stable to well under 1%).

    python benchmarks/instructions.py [--n 2000] [METHOD ...]

Runs each receive method in its own `valgrind --tool=callgrind` process:
once queueing n 64-byte datagrams and draining them, once only queueing
them, and reports the difference / n: the user-space instructions one
receive costs (the kernel's share is not counted), side by side.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_recv import BASELINE, METHODS  # noqa: E402 - the same methods, side by side

CHILD = """
import sys
sys.path.insert(0, {here!r})
import bench_recv as b
rx, tx = b.make_pair()
method, fill = b.METHODS[{name!r}], b.filler(rx, tx, {name!r})
fill(b"p" * 64, 64)
method(rx, 64)
n = {n}
fill(b"p" * 64, n)
if {drain}:
    method(rx, n)
"""


def instructions(name: str, n: int, *, drain: bool) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cg.out"
        result = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                CHILD.format(here=str(HERE), name=name, n=n, drain=drain),
            ],
            check=False,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts every run
        )
        if not out.exists():
            sys.exit(f"instructions: the child failed:\n{result.stderr}")
        match = re.search(r"^summary:\s+(\d+)", out.read_text(), re.MULTILINE)
        assert match, "callgrind wrote no summary"
        return int(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("methods", nargs="*", help="methods to count (default: all); the baseline is always counted")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        print("valgrind is not installed (apt-get install valgrind): no instruction counts")
        return 0
    names = args.methods or list(METHODS)
    if BASELINE not in names:
        names.insert(0, BASELINE)
    figures = {
        name: (instructions(name, args.n, drain=True) - instructions(name, args.n, drain=False)) / args.n
        for name in names
    }
    print(f"{'method':<48} {'instructions/datagram':>22} {'ratio':>7}")
    for name, value in figures.items():
        print(f"{name:<48} {value:>22.0f} {value / figures[BASELINE]:>7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
