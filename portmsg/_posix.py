"""POSIX glue over portmsg._posix_cffi: recvmsg/recvmmsg/sendmsg, errno -> OSError.

Everything else is shared with the Windows backend in _glue.py.
"""

from __future__ import annotations

from ._glue import CffiBackend
from ._posix_cffi import ffi, lib

__all__ = ["BACKEND", "PosixBackend"]


class PosixBackend(CffiBackend):
    """recvmsg(2) / recvmmsg(2) / sendmsg(2), with the control walk done in the same C call."""

    name = "posix"


BACKEND = PosixBackend(ffi, lib)
