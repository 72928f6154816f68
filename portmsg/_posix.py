"""The POSIX backend: recvmsg(2) / recvmmsg(2) / sendmsg(2) over portmsg._posix_cffi, errno -> OSError."""

from __future__ import annotations

import errno
import os
import sys

from ._glue import CffiBackend, read_constants
from ._hooks import OsHooks
from ._posix_cffi import ffi, lib

__all__ = ["IMPL"]


def _error(code: int) -> OSError:
    """OSError(errno, strerror): Python picks the subclass (BlockingIOError ...), as the stdlib does."""
    return OSError(code, os.strerror(code))


_CONSTANTS = read_constants(ffi, lib)
IMPL = CffiBackend(
    ffi,
    lib,
    _CONSTANTS,
    OsHooks(
        name="posix",
        platform=sys.platform,
        error=_error,
        would_block=frozenset({errno.EAGAIN, errno.EWOULDBLOCK}),
        eintr=errno.EINTR,
        closed=errno.EBADF,
        # Receives never block in the kernel: see _wait.py.
        dontwait=_CONSTANTS.get("MSG_DONTWAIT", 0),
    ),
)
