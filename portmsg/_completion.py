"""The completion engine: Windows' ProactorEventLoop, overlapped WSARecvMsg / WSASendMsg through its port.

It relies on two private methods of asyncio's IocpProactor,
`_register_with_iocp(obj)` and `_register(ov, obj, callback)` (unchanged
from CPython 3.8 to 3.14), checked by proactor_of() before an engine is
made: where they differ, NotImplementedError names the loop and the way out.
"""

from __future__ import annotations

import collections
import inspect
from typing import TYPE_CHECKING, Any

from . import _io
from ._engines import Engine

if TYPE_CHECKING:
    import asyncio
    import socket

    from ._engines import Write
    from ._types import Message

__all__ = ["Completion", "proactor_of"]


def _dequeued(transferred: Any, key: Any, op: Any) -> Any:  # noqa: ARG001 - the proactor's signature
    """The proactor's callback, run in its _poll() once the packet is off the port: it only hands the op over."""
    op.dequeued = True
    return op


class Completion(Engine):
    """`depth` overlapped WSARecvMsg kept posted through the ProactorEventLoop's port; one send in flight."""

    name = "completion"

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, fd: int) -> None:
        super().__init__(loop, sock, fd)
        self._proactor = proactor_of(loop)
        self._proactor._register_with_iocp(sock)  # noqa: SLF001 - checked by proactor_of()
        self._receives: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._idle: list[Any] = []
        self._retry: asyncio.Handle | None = None
        self._sending: asyncio.Future[Any] | None = None

    def _start_reading(self) -> None:
        self._top_up()

    def _pause_reading(self) -> None:
        """No new posts; the receives in flight still complete and are delivered."""

    def _stop_reading(self) -> None:
        for future in self._receives:
            future.cancel()  # CancelIoEx; the proactor keeps the op until its packet is dequeued
        self._receives.clear()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None

    def _top_up(self) -> None:
        self._retry = None
        while self.reading and self.owner is not None and not self.paused and len(self._receives) < self._depth:
            op = self._idle.pop() if self._idle else _io.post_receive(self.sock, self._bufsize, self._ancbufsize)
            try:
                op.start()
            except OSError as exc:
                self._idle.append(op)
                if _io.is_closed(self.sock, exc):
                    self.end()
                    return
                # Reported at posting (an ICMP reset, say): once, then post again on the next iteration.
                self._retry = self.loop.call_soon(self._top_up)
                self._call(self.owner.failed, exc)
                return
            future = self._proactor._register(op, self.sock, _dequeued)  # noqa: SLF001 - checked by proactor_of()
            self._receives.append(future)
            future.add_done_callback(self._completed)

    def _completed(self, _future: asyncio.Future[Any]) -> None:
        # Posting order: the kernel fills posted receives first in, first out.
        done: list[Message | OSError] = []
        receives = self._receives
        closed = False
        while receives and receives[0].done() and not closed:
            future = receives.popleft()
            if future.cancelled():
                continue
            op = future.result()
            try:
                done.append(op.message())
            except OSError as exc:
                closed = _io.is_closed(self.sock, exc)
                if not closed:
                    done.append(exc)  # WSAECONNRESET / WSAENETRESET after an ICMP error: once, then go on
            self._idle.append(op)
        if not closed and not self._once:
            self._top_up()  # post again before the owner hears: a raising owner never stops reading
        batch: list[Message] = []
        for item in done:
            owner = self.owner
            if not self.reading or owner is None:
                break  # closed by the owner meanwhile: nothing more is delivered
            if isinstance(item, OSError):
                if batch:
                    self._call(owner.received, batch)
                    batch = []
                self._call(owner.failed, item)
            else:
                batch.append(item)
        if batch and self.reading and self.owner is not None:
            self._call(self.owner.received, batch)
        if closed:
            self.end()

    def _start_writing(self) -> None:
        write = self.writes[0]
        try:
            op = _io.post_send(self.sock, write.data, write.out)
        except OSError as exc:
            self._after_send(write, exc)
            return
        self._sending = self._proactor._register(op, self.sock, _dequeued)  # noqa: SLF001 - checked by proactor_of()
        self._sending.add_done_callback(lambda future: self._send_done(write, future))

    def _send_done(self, write: Write, future: asyncio.Future[Any]) -> None:
        if future is not self._sending:
            return  # stopped meanwhile
        self._sending = None
        if future.cancelled():
            return
        try:
            result: int | OSError = future.result().sent()
        except OSError as exc:
            result = exc
        self._after_send(write, result)

    def _after_send(self, write: Write, result: int | OSError) -> None:
        if not self.writes or self.writes[0] is not write:
            return
        if isinstance(result, OSError):
            if _io.is_closed(self.sock, result):
                self.end()
                return
            self._send_failed(write, result)
        else:
            self._pop()
            self._sent(write, result)
        if self.writes:
            self._start_writing()
        else:
            self.release()

    def _stop_writing(self) -> None:
        if self._sending is not None:
            sending, self._sending = self._sending, None
            sending.cancel()

    def _in_flight(self) -> bool:
        return self._sending is not None

    def _restart_writing(self) -> None:
        self._stop_writing()
        self._start_writing()


def proactor_of(loop: asyncio.AbstractEventLoop) -> Any:
    """The loop's IocpProactor, if it still has the private methods the completion engine relies on."""
    proactor = getattr(loop, "_proactor", None)
    register = getattr(proactor, "_register", None)
    try:
        parameters = list(inspect.signature(register).parameters) if callable(register) else []
    except (TypeError, ValueError):
        parameters = []
    if parameters != ["ov", "obj", "callback"] or not callable(getattr(proactor, "_register_with_iocp", None)):
        msg = (
            f"{type(loop).__name__} has no add_reader() and its proactor lacks the _register(ov, obj, callback) "
            "portmsg's overlapped receives rely on; use asyncio.SelectorEventLoop "
            "(asyncio.run(main(), loop_factory=asyncio.SelectorEventLoop) on 3.12+)"
        )
        raise NotImplementedError(msg)
    return proactor


async def receive_once(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, bufsize: int, ancbufsize: int, flags: int
) -> tuple[bytes, list[Any], int, Any]:
    """One overlapped WSARecvMsg through the proactor's port, as recvmsg() returns it (Level 1)."""
    proactor = proactor_of(loop)
    proactor._register_with_iocp(sock)  # noqa: SLF001 - checked by proactor_of()
    op = _io.post_receive(sock, bufsize, ancbufsize)
    op.start(flags)
    done = await proactor._register(op, sock, _dequeued)  # noqa: SLF001 - checked by proactor_of()
    return done.level1()  # type: ignore[no-any-return]
