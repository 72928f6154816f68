"""Run the C control-buffer walker under AddressSanitizer and UBSan, on both layouts.

    python tools/sanitize_walker.py [ITERATIONS]

Builds tools/sanitize_walker.c twice (the host's cmsghdr, and WSACMSGHDR with
the WSA_CMSG_* formulas) with -fsanitize=address,undefined and feeds each
random and hostile control buffers.  Exit status 1 on any finding.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    iterations = argv[0] if argv else "200000"
    with tempfile.TemporaryDirectory() as tmp:
        for name, defines in (("cmsghdr", []), ("wsacmsghdr", ["-DPM_WSA_LAYOUT"])):
            exe = Path(tmp) / name
            subprocess.run(
                [
                    "gcc",
                    "-O1",
                    "-g",
                    "-Wall",
                    "-Werror",
                    "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all",
                    *defines,
                    str(HERE / "sanitize_walker.c"),
                    "-o",
                    str(exe),
                ],
                check=True,
            )
            result = subprocess.run([str(exe), iterations], check=False)
            if result.returncode:
                print(f"sanitize_walker: the {name} walker failed", file=sys.stderr)
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
