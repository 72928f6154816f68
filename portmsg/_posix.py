"""POSIX glue over portmsg._posix_cffi: recvmsg/sendmsg, errno -> OSError."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._glue import CffiBackend
from ._posix_cffi import ffi, lib

if TYPE_CHECKING:
    import socket

__all__ = ["BACKEND", "PosixBackend"]


class PosixBackend(CffiBackend):
    """recvmsg(2) / sendmsg(2) with the control walk done in the same C call."""

    name = "posix"

    def _recv_call(
        self,
        sock: socket.socket,
        fd: int,
        bufs: Any,
        nbufs: int,
        name: Any,
        control: Any,
        controllen: int,
        flags: int,
        records: Any,
        maxrecords: int,
        result: Any,
    ) -> int:
        del sock
        if lib.pm_recvmsg(
            fd, bufs, nbufs, name, self._name_size, control, controllen, flags, records, maxrecords, result
        ):
            return int(result.error)
        return 0

    def _send_call(
        self,
        sock: socket.socket,
        fd: int,
        bufs: Any,
        nbufs: int,
        name: bytes,
        control: Any,
        controllen: int,
        flags: int,
    ) -> tuple[int, int]:
        del sock
        error = ffi.new("int *")
        cname = ffi.from_buffer(name) if name else ffi.NULL
        sent = lib.pm_sendmsg(fd, bufs, nbufs, cname, len(name), control, controllen, flags, error)
        return (int(sent), 0) if sent >= 0 else (-1, int(error[0]))


BACKEND = PosixBackend(ffi, lib)
