"""cffi build script for the POSIX backend (portmsg._posix_cffi).

Out-of-line API mode against the system's own headers: recvmsg, sendmsg,
and recvmmsg / sendmmsg where the C library has them, with the control
walk done in C in the same call.  The C lives in _csrc/: posix.h (the
prelude), posix.c (the entry points declared in portmsg.h) and the shared
walker, loops and constants table.
"""

from __future__ import annotations

import pathlib
import runpy

HERE = pathlib.Path(__file__).resolve().parent

# cffi execs this script before the package can be imported: load the helper by path.
build_ffi = runpy.run_path(str(HERE / "_csrc" / "ffi_assemble.py"))["build_ffi"]

ffibuilder = build_ffi("portmsg._posix_cffi", prelude="posix.h", entry="posix.c")

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
