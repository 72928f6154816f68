"""cffi build script for the Windows backend (portmsg._winsock_cffi).

Out-of-line API mode against winsock2.h, ws2tcpip.h, mswsock.h and mstcpip.h,
linked with ws2_32.  WSARecvMsg is not exported by ws2_32: its pointer comes
from WSAIoctl(SIO_GET_EXTENSION_FUNCTION_POINTER) on the socket itself, and
belongs to that socket's provider (see _winsock.py for the cache).  The C
lives in _csrc/: winsock.h (the prelude, with the Windows SDK's values for
names MinGW lacks, behind #ifndef), winsock.c (the entry points) and
winsock_cdef.h (what only Windows binds), plus the shared sources.
"""

from __future__ import annotations

import pathlib
import runpy

HERE = pathlib.Path(__file__).resolve().parent

# cffi execs this script before the package can be imported: load the helper by path.
build_ffi = runpy.run_path(str(HERE / "_csrc" / "ffi_assemble.py"))["build_ffi"]

ffibuilder = build_ffi(
    "portmsg._winsock_cffi",
    prelude="winsock.h",
    entry="winsock.c",
    extra_cdef="winsock_cdef.h",
    libraries=["ws2_32"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
