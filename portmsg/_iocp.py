"""Overlapped receives and sends for an I/O completion port (Windows): ops asyncio's proactor can track.

An op duck-types what asyncio's IocpProactor touches on an
_overlapped.Overlapped: `.address` (its OVERLAPPED), `.pending`, `.cancel()`.
It owns every byte the kernel writes while it is in flight (the pm_op, and a
receive's buffers preset in their own pm_recv_args): whoever holds it (the
proactor's cache, until the completion packet is dequeued) keeps that memory
alive.  A receive op is reused: started again once its packet was dequeued.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from ._report import items

if TYPE_CHECKING:
    from ._glue import CffiBackend
    from ._types import Message

__all__ = ["RecvOp", "SendOp"]


class _Op:
    """What both kinds of op share: the pm_op, its address, and when its packet is off the port."""

    __slots__ = ("_backend", "_fd", "_op", "_sock", "address", "dequeued", "started")

    def __init__(self, backend: CffiBackend, sock: socket.socket) -> None:
        self._backend = backend
        self._sock = sock
        self._fd = sock.fileno()  # the handle the op was posted on, for its completion even after a close
        self._op = backend.ffi.new("pm_op *")
        self.address = int(backend.ffi.cast("uintptr_t", self._op))  # == &op->ov
        self.started = False
        self.dequeued = False  # set by whoever takes its completion packet off the port

    @property
    def pending(self) -> bool:
        """True until the completion packet is dequeued, not merely until the I/O is done.

        IocpProactor._register() reads this once: True routes every op, complete
        at once or not, through one callback run when the packet is dequeued,
        the moment its memory is free to reuse.
        """
        return self.started and not self.dequeued

    def cancel(self) -> None:
        """CancelIoEx, a no-op once complete (as _overlapped.Overlapped.cancel())."""
        if not self.started or not self._backend.lib.pm_op_pending(self._op):
            return
        code = self._backend.lib.pm_op_cancel(self._op, self._fd)
        if code not in (0, self._backend.constants["ERROR_NOT_FOUND"]):  # ERROR_NOT_FOUND: it completed
            raise self._backend.hooks.error(code)

    def _posted(self, code: int) -> None:
        """After a start: 0 (complete already: its packet is still queued) or pending is fine; else raise."""
        if code not in (0, self._backend.constants["WSA_IO_PENDING"]):
            raise self._backend.hooks.error(code)
        self.started = True
        self.dequeued = False


class RecvOp(_Op):
    """One overlapped WSARecvMsg into buffers of its own, finished into a Message as portmsg.recv builds it."""

    __slots__ = ("_ancbufsize", "_bufsize", "_scratch")

    def __init__(self, backend: CffiBackend, sock: socket.socket, bufsize: int, ancbufsize: int) -> None:
        super().__init__(backend, sock)
        self._bufsize, self._ancbufsize = bufsize, ancbufsize
        self._scratch = backend.scratches.new()
        backend.scratches.fit(self._scratch, bufsize, ancbufsize)
        self._scratch.args.spare = sock.type != socket.SOCK_STREAM  # datagrams: exact truncation (winsock.c)

    def start(self, flags: int = 0) -> None:
        """Post the receive (complete at once or not, a completion packet follows); OSError if it failed."""
        backend, args = self._backend, self._scratch.args
        fd = self._fd = self._sock.fileno()
        if fd < 0:
            raise backend.hooks.error(backend.hooks.closed)
        if backend.hooks.functions is not None:
            args.fn = backend.hooks.functions(self._sock, fd)[0]
        self._posted(backend.lib.pm_op_start(self._op, fd, flags, args, backend.ffi.NULL))

    def message(self) -> Message:
        """The completed receive; OSError as its completion says (a closed socket: the stdlib's closed error)."""
        backend = self._backend
        n = backend.lib.pm_op_finish(self._op, self._fd, self._scratch.args)
        if n < 0:
            if self._sock.fileno() < 0:
                raise backend.hooks.error(backend.hooks.closed)
            raise backend.hooks.error(-n)
        return backend.messages(self._scratch, 1, self._bufsize, self._ancbufsize)[0]

    def level1(self) -> tuple[bytes, list[Any], int, Any]:
        """The completed receive as recvmsg() returns it: (data, ancdata, native flags, address)."""
        backend, st = self._backend, self._scratch
        n = backend.lib.pm_op_finish(self._op, self._fd, st.args)
        if n < 0:
            if self._sock.fileno() < 0:
                raise backend.hooks.error(backend.hooks.closed)
            raise backend.hooks.error(-n)
        nbytes, flags, namelen, controllen = st.head_view[0], st.head_view[1], st.head_view[2], st.head_view[3]
        control = st.control_bytes[:controllen]
        address = backend.codec.decode(st.name_bytes[:namelen])
        return st.data_bytes[: min(nbytes, self._bufsize)], items(control, st.records_view, 0, n), flags, address


class SendOp(_Op):
    """One overlapped WSASendMsg of a prepared datagram (data view, sockaddr bytes, encoded controls)."""

    __slots__ = ("_keep",)

    def start(self, cdata: Any, name: bytes, control: bytes) -> None:
        """Post the send (a cffi view of the data, sockaddr bytes, control bytes); OSError if it failed at once."""
        backend, ffi = self._backend, self._backend.ffi
        fd = self._fd = self._sock.fileno()
        if fd < 0:
            raise backend.hooks.error(backend.hooks.closed)
        functions = backend.hooks.functions
        fn = ffi.NULL if functions is None else functions(self._sock, fd)[1]
        cname = ffi.from_buffer(name) if name else ffi.NULL
        ccontrol = ffi.from_buffer(control) if control else ffi.NULL
        self._keep: Any = (cdata, cname, ccontrol)  # the kernel reads them until the completion
        code = backend.lib.pm_send_op_start(
            self._op, fn, fd, cdata, len(cdata), cname, len(name), ccontrol, len(control), 0
        )
        self._posted(code)

    def sent(self) -> int:
        """The bytes the completed send took; OSError as its completion says."""
        n = int(self._backend.lib.pm_send_op_finish(self._op, self._fd))
        self._keep = None
        if n < 0:
            raise self._backend.hooks.error(-n)
        return n
