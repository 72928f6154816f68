"""The asyncio engines that keep reading a socket: readiness (add_reader) and completion (IOCP).

An engine reads datagrams as the loop allows and hands them to its owner
(a Receiver's queue, or a transport's protocol) through three callbacks:
`deliver(messages)`, `error(exc)` for an error the OS reports for the socket
(raised once, reading goes on), and `ended(exc or None)` when the socket is
gone.  The owner pauses and resumes it for flow control.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import sys
from typing import TYPE_CHECKING, Any

from . import _args
from ._api import recv_batch
from ._backend import IMPL
from ._wait import CLOSE_CHECK

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from ._iocp import RecvOp
    from ._types import Message

__all__ = ["BATCH", "Engine", "engine_for", "is_proactor", "nonblocking", "proactor_of", "send_overlapped"]

BATCH = 32
"""Datagrams one readiness wakeup takes at most: other sockets and timers get their turn."""
_ANCBUFSIZE = 512  # every IP-level control at once takes under 300 bytes
# Winsock codes for "this socket is gone": WSA_OPERATION_ABORTED (closesocket cancels),
# ERROR_NETNAME_DELETED, ERROR_HANDLES_CLOSED (Wine 8), WSAENOTSOCK.
_CLOSED_WINERRORS = (995, 64, 676, 10038)

Deliver = "Callable[[list[Message]], None]"


class Engine:
    """Reads one socket for an owner; see the module's documentation."""

    name = ""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        bufsize: int,
        deliver: Callable[[list[Message]], None],
        error: Callable[[OSError], None],
        ended: Callable[[OSError | None], None],
    ) -> None:
        self._loop = loop
        self._sock = sock
        self._bufsize = bufsize
        self._deliver = deliver
        self._error = error
        self._ended = ended
        self.paused = False
        self.stopped = False

    def start(self) -> None:
        """Begin reading."""
        raise NotImplementedError

    def pause(self) -> None:
        """Stop reading until resume() (what is in flight still arrives)."""
        raise NotImplementedError

    def resume(self) -> None:
        """Read again after pause()."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop for good (cancelling what is in flight)."""
        raise NotImplementedError

    def _end(self, error: OSError | None = None) -> None:
        if not self.stopped:
            self.stop()
            self._ended(error)


class Readiness(Engine):
    """add_reader + the non-blocking recv_batch, on every loop that has add_reader."""

    name = "readiness"

    def start(self) -> None:
        self._fd = self._sock.fileno()
        self._loop.add_reader(self._fd, self._readable)
        self._watch = self._loop.call_later(CLOSE_CHECK, self._check_open)

    def pause(self) -> None:
        if not self.paused and not self.stopped:
            self.paused = True
            self._loop.remove_reader(self._fd)

    def resume(self) -> None:
        if self.paused and not self.stopped:
            self.paused = False
            self._loop.add_reader(self._fd, self._readable)

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self._watch.cancel()
            if not self.paused:
                self._loop.remove_reader(self._fd)

    def _check_open(self) -> None:
        """A poller forgets a closed descriptor silently: look now and then, and end."""
        if self._sock.fileno() < 0:
            self._end()
        elif not self.stopped:
            self._watch = self._loop.call_later(CLOSE_CHECK, self._check_open)

    def _readable(self) -> None:
        try:
            batch = recv_batch(self._sock, BATCH, self._bufsize)
        except (BlockingIOError, InterruptedError):
            return  # a spurious wakeup: drained elsewhere, or a datagram Linux dropped on a bad checksum
        except OSError as exc:
            if self._sock.fileno() < 0:
                self._end()
                return
            self._error(exc)  # e.g. ECONNREFUSED after an ICMP error: once, and reading goes on
            if not self.paused and not self.stopped:
                # uvloop (libuv's uv_poll) drops a reader after POLLERR: register it again.
                self._loop.remove_reader(self._fd)
                self._loop.add_reader(self._fd, self._readable)
            return
        self._deliver(batch)


def _dequeued(transferred: Any, key: Any, op: Any) -> Any:  # noqa: ARG001 - the proactor's signature
    """The proactor's callback, run in its _poll() once the packet is off the port.

    Anything but OSError raised here would escape into the event loop: it
    only hands the op over; decoding happens in the future's done-callback.
    """
    op.dequeued = True
    return op


class Completion(Engine):
    """`depth` overlapped WSARecvMsg kept posted through the ProactorEventLoop's port."""

    name = "completion"

    def __init__(self, *args: Any, depth: int = 4) -> None:
        super().__init__(*args)
        self._depth = depth
        self._proactor = proactor_of(self._loop)
        self._futures: collections.deque[asyncio.Future[RecvOp]] = collections.deque()
        self._idle: list[RecvOp] = []

    def start(self) -> None:
        self._proactor._register_with_iocp(self._sock)  # noqa: SLF001 - checked by proactor_of()
        self._top_up()

    def _top_up(self) -> None:
        from ._iocp import RecvOp  # noqa: PLC0415 - Windows only

        while len(self._futures) < self._depth and not self.paused and not self.stopped:
            op = self._idle.pop() if self._idle else RecvOp(IMPL, self._sock, self._bufsize, _ANCBUFSIZE)
            try:
                op.start()
            except OSError as exc:
                self._end(exc if self._sock.fileno() >= 0 else None)
                return
            future = self._proactor._register(op, self._sock, _dequeued)  # noqa: SLF001 - checked by proactor_of()
            self._futures.append(future)
            future.add_done_callback(self._completed)

    def _completed(self, _future: asyncio.Future[RecvOp]) -> None:
        # Posting order: the kernel fills posted receives first in, first out.
        while self._futures and self._futures[0].done():
            future = self._futures.popleft()
            if future.cancelled():
                continue
            op = future.result()
            try:
                message = op.message()
            except OSError as exc:
                if self._sock.fileno() < 0 or getattr(exc, "winerror", None) in _CLOSED_WINERRORS:
                    self._end()
                    return
                self._error(exc)  # WSAECONNRESET / WSAENETRESET after an ICMP error: once, then go on
            else:
                self._deliver([message])
            self._idle.append(op)
        self._top_up()

    def pause(self) -> None:
        self.paused = True  # no new posts; receives in flight still arrive

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self._top_up()

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            for future in self._futures:
                future.cancel()  # CancelIoEx; the proactor keeps the op until its packet is dequeued
            self._futures.clear()


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


def is_proactor(loop: asyncio.AbstractEventLoop) -> bool:
    """Windows' ProactorEventLoop (IOCP, no add_reader)."""
    proactor_loop = getattr(asyncio, "ProactorEventLoop", None)
    return sys.platform == "win32" and proactor_loop is not None and isinstance(loop, proactor_loop)


def engine_for(
    loop: asyncio.AbstractEventLoop,
    sock: socket.socket,
    bufsize: int,
    depth: int,
    deliver: Callable[[list[Message]], None],
    error: Callable[[OSError], None],
    ended: Callable[[OSError | None], None],
) -> Engine:
    """The engine this loop takes: completion on the Proactor, readiness elsewhere (not started)."""
    # The Proactor first: CPython may give it an add_reader() that runs select()
    # in a thread (gh-81554); overlapped receives need no thread.
    if is_proactor(loop):
        return Completion(loop, sock, bufsize, deliver, error, ended, depth=depth)
    return Readiness(loop, sock, bufsize, deliver, error, ended)


def nonblocking(sock: Any) -> socket.socket:
    """The socket behind sock, which must be non-blocking (a blocking call would stall the loop)."""
    inner = _args.sock_of(sock)
    if inner.gettimeout() != 0:
        msg = "portmsg.aio needs a non-blocking socket: call sock.setblocking(False) first"
        raise ValueError(msg)
    return inner


def set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def send_overlapped(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, cdata: Any, name: bytes, control: Any
) -> int:
    """One overlapped WSASendMsg through the Proactor's port: the bytes sent."""
    from ._iocp import SendOp  # noqa: PLC0415 - Windows only

    proactor = proactor_of(loop)
    proactor._register_with_iocp(sock)  # noqa: SLF001 - checked by proactor_of()
    op = SendOp(IMPL, sock)
    op.start(cdata, name, control)
    done = await proactor._register(op, sock, _dequeued)  # noqa: SLF001 - checked by proactor_of()
    return done.sent()  # type: ignore[no-any-return]
