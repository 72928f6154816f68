"""asyncio: receive and send datagrams with their metadata without blocking the event loop.

    async with portmsg.aio.open_receiver(sock) as rx:   # sock: a non-blocking datagram socket
        msg = await rx.recv()                            # a portmsg.Message, as portmsg.recv() gives
        batch = await rx.recv_many(64)                   # one wait, then what else is queued
        async for msg in rx: ...                         # until close()
    await portmsg.aio.send(sock, b"answer", msg.address, controls=msg.reply_controls())

Two engines, picked by the running loop:

- readiness, on every loop with `add_reader` (the default loop on Linux and
  macOS, `SelectorEventLoop` on Windows, uvloop): `add_reader` plus the
  non-blocking `portmsg.recv_batch`, at most 32 datagrams per wakeup;
- completion, on Windows' default `ProactorEventLoop` (IOCP, no `add_reader`):
  `depth` overlapped WSARecvMsg kept posted, completed through the proactor's
  port and delivered in posting order.  It relies on the proactor's private
  `_register_with_iocp` and `_register(ov, obj, callback)` (unchanged from
  CPython 3.8 to 3.14), checked when a receiver opens: where they differ,
  `open_receiver` raises NotImplementedError naming the loop and the way out.

The receives belong to the Receiver, not to the task awaiting `recv()`:
cancelling or timing out `recv()` never loses a datagram (overlapped receives
are cancelled by `close()` only, and their memory lives until the port
gives it back).  An error the OS reports for the socket (ECONNREFUSED,
WSAECONNRESET, WSAENETRESET) is raised once by `recv()`, and reading goes on.
A queue holding `max_queued` datagrams stops reading until half is taken:
the kernel's buffer absorbs the burst.  A socket closed under the receiver
ends it: `recv()` raises the closed-socket error and iteration stops.  Close
the receiver before the socket.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import sys
from typing import TYPE_CHECKING, Any

from . import _args
from ._api import _prepare, recv_batch
from ._backend import IMPL
from ._types import Message
from ._wait import CLOSE_CHECK

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterable

    from ._iocp import RecvOp
    from ._types import Control

__all__ = ["Receiver", "open_receiver", "send"]

BATCH = 32
"""Datagrams one readiness wakeup takes at most: other sockets and timers get their turn."""
_END = object()  # queued by close(): every waiter stops


class Receiver:
    """Datagrams from one socket, received for you; see the module's documentation.

    Made by `open_receiver()`.  Use it as an async context manager, or call
    `close()`.
    """

    engine = ""
    """"readiness" or "completion"."""

    def __init__(self, sock: socket.socket, bufsize: int, max_queued: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._bufsize = bufsize
        self._max_queued = max_queued
        self._queue: collections.deque[Any] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._paused = False
        self.closed = False

    # -- what an engine provides -----------------------------------------------------
    def _start(self) -> None:
        raise NotImplementedError

    def _pause(self) -> None:
        raise NotImplementedError

    def _resume(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------
    def _deliver(self, item: Any) -> None:
        """Queue a Message, or an OSError for recv() to raise once."""
        self._queue.append(item)
        self._queued()

    def _deliver_all(self, messages: list[Message]) -> None:
        self._queue.extend(messages)
        self._queued()

    def _queued(self) -> None:
        self._wake()
        if not self._paused and len(self._queue) >= self._max_queued:
            self._paused = True
            self._pause()

    def _wake(self, *, everyone: bool = False) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return

    def _end(self, error: OSError | None = None) -> None:
        """Stop reading for good; queued datagrams stay readable, then `error` (or EBADF) is raised."""
        if self.closed:
            return
        self.closed = True
        self._stop()
        self._queue.append(error if error is not None else _closed_error())
        self._queue.append(_END)
        self._wake(everyone=True)

    def _take(self) -> Any:
        item = self._queue[0]
        if item is _END:  # left queued: every later call ends too
            return item
        self._queue.popleft()
        self._taken()
        return item

    def _taken(self) -> None:
        if self._paused and len(self._queue) <= self._max_queued // 2 and not self.closed:
            self._paused = False
            self._resume()

    async def recv(self) -> Message:
        """The next datagram.  Raises the OS's error for the socket once, or the closed error at the end."""
        while not self._queue:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # cancellation-safe: nothing is taken before this returns
            finally:
                self._waiters.remove(waiter)
                if waiter.cancelled() and self._queue:
                    self._wake()  # this task leaves: the next waiter takes what it would have
        item = self._take()
        if item is _END:
            raise _closed_error()
        if isinstance(item, BaseException):
            raise item
        return item  # type: ignore[no-any-return]

    async def recv_many(self, max_messages: int = 64) -> list[Message]:
        """Wait for one datagram, then take what else is queued (max_messages at most)."""
        batch = [await self.recv()]
        queue, take = self._queue, self._queue.popleft
        while len(batch) < max_messages and queue and type(queue[0]) is Message:
            batch.append(take())
        self._taken()
        return batch

    def __aiter__(self) -> Receiver:
        return self

    async def __anext__(self) -> Message:
        if self.closed and self._queue and self._queue[0] is _END:
            raise StopAsyncIteration
        try:
            return await self.recv()
        except OSError:
            if self.closed and self._queue and self._queue[0] is _END:
                raise StopAsyncIteration from None
            raise

    def close(self) -> None:
        """Stop receiving (cancelling overlapped receives in flight); a waiting recv() raises EBADF."""
        if not self.closed:
            self.closed = True
            self._stop()
            self._queue.append(_END)
            self._wake(everyone=True)

    async def __aenter__(self) -> Receiver:  # noqa: PYI034 - Self needs 3.11
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class _Readiness(Receiver):
    """add_reader + non-blocking recv_batch, on every loop that has add_reader."""

    engine = "readiness"

    def _start(self) -> None:
        self._fd = self._sock.fileno()
        self._loop.add_reader(self._fd, self._readable)
        self._watch = self._loop.call_later(CLOSE_CHECK, self._check_open)

    def _pause(self) -> None:
        self._loop.remove_reader(self._fd)

    def _resume(self) -> None:
        self._loop.add_reader(self._fd, self._readable)

    def _stop(self) -> None:
        self._watch.cancel()
        if not self._paused:
            self._loop.remove_reader(self._fd)

    def _check_open(self) -> None:
        """A poller forgets a closed descriptor silently: look now and then, and end."""
        if self._sock.fileno() < 0:
            self._end()
        elif not self.closed:
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
            self._deliver(exc)  # e.g. ECONNREFUSED after an ICMP error: raised once, reading goes on
            if not self._paused and not self.closed:
                # uvloop (libuv's uv_poll) drops a reader after POLLERR: register it again.
                self._loop.remove_reader(self._fd)
                self._loop.add_reader(self._fd, self._readable)
            return
        self._deliver_all(batch)


def _dequeued(transferred: Any, key: Any, op: RecvOp) -> RecvOp:  # noqa: ARG001 - the proactor's signature
    """The proactor's callback, run in its _poll() once the packet is off the port.

    Anything but OSError raised here would escape into the event loop: it
    only hands the op over; decoding happens in the future's done-callback.
    """
    op.dequeued = True
    return op


class _Completion(Receiver):
    """`depth` overlapped WSARecvMsg kept posted through the ProactorEventLoop's port."""

    engine = "completion"

    def __init__(self, sock: socket.socket, bufsize: int, max_queued: int, depth: int) -> None:
        super().__init__(sock, bufsize, max_queued)
        self._depth = depth
        self._proactor = _proactor(self._loop)
        self._futures: collections.deque[asyncio.Future[RecvOp]] = collections.deque()
        self._idle: list[RecvOp] = []

    def _start(self) -> None:
        self._proactor._register_with_iocp(self._sock)  # noqa: SLF001 - checked by _proactor()
        self._top_up()

    def _top_up(self) -> None:
        from ._iocp import RecvOp  # noqa: PLC0415 - Windows only

        while len(self._futures) < self._depth and not self._paused and not self.closed:
            op = self._idle.pop() if self._idle else RecvOp(IMPL, self._sock, self._bufsize, _ANCBUFSIZE)
            try:
                op.start()
            except OSError as exc:
                self._end(exc if self._sock.fileno() >= 0 else None)
                return
            future = self._proactor._register(op, self._sock, _dequeued)  # noqa: SLF001 - checked by _proactor()
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
                self._deliver(op.message())
            except OSError as exc:
                if self._sock.fileno() < 0 or getattr(exc, "winerror", None) in _CLOSED_WINERRORS:
                    self._end()
                    return
                self._deliver(exc)  # WSAECONNRESET / WSAENETRESET after an ICMP error: once, then go on
            self._idle.append(op)
        self._top_up()

    def _pause(self) -> None:
        pass  # no new posts; receives in flight still land in the queue

    def _resume(self) -> None:
        self._top_up()

    def _stop(self) -> None:
        for future in self._futures:
            future.cancel()  # CancelIoEx; the proactor keeps the op until its packet is dequeued
        self._futures.clear()


# Winsock codes for "this socket is gone": WSA_OPERATION_ABORTED (closesocket cancels),
# ERROR_NETNAME_DELETED, ERROR_HANDLES_CLOSED (Wine 8), WSAENOTSOCK.
_CLOSED_WINERRORS = (995, 64, 676, 10038)
_ANCBUFSIZE = 512  # every IP-level control at once takes under 300 bytes


def _closed_error() -> OSError:
    return IMPL.hooks.error(IMPL.hooks.closed)


def _proactor(loop: asyncio.AbstractEventLoop) -> Any:
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


def _is_proactor(loop: asyncio.AbstractEventLoop) -> bool:
    proactor_loop = getattr(asyncio, "ProactorEventLoop", None)
    return sys.platform == "win32" and proactor_loop is not None and isinstance(loop, proactor_loop)


def _nonblocking(sock: Any) -> socket.socket:
    inner = _args.sock_of(sock)
    if inner.gettimeout() != 0:
        msg = "portmsg.aio needs a non-blocking socket: call sock.setblocking(False) first"
        raise ValueError(msg)
    return inner


def open_receiver(sock: Any, *, bufsize: int | None = None, max_queued: int = 1024, depth: int = 4) -> Receiver:
    """A Receiver for sock on the running loop.

    Args:
        sock: a non-blocking datagram socket, or asyncio's TransportSocket of one.
        bufsize: the most bytes of data per datagram; None: 2048, or 65535 on a
            socket that coalesces (SEGMENT_OFFLOAD), as recv_batch() sizes it.
        max_queued: datagrams held before reading pauses.
        depth: overlapped receives kept posted (completion engine only).

    Raises:
        ValueError: a blocking socket, or a size out of range.
        NotImplementedError: a loop with neither add_reader() nor the proactor internals relied on.

    """
    inner = _nonblocking(sock)
    if bufsize is None:
        bufsize = 65535 if _coalesces(inner) else 2048
    bufsize = _args.ssize(bufsize, "bufsize must be 0 or more")
    if max_queued < 1 or depth < 1:
        msg = f"max_queued and depth must be 1 or more, not {max_queued} and {depth}"
        raise ValueError(msg)
    loop = asyncio.get_running_loop()
    # The Proactor first: CPython may give it an add_reader() that runs select()
    # in a thread (gh-81554); overlapped receives need no thread.
    receiver: Receiver
    if _is_proactor(loop):
        receiver = _Completion(inner, bufsize, max_queued, depth)
    else:
        receiver = _Readiness(inner, bufsize, max_queued)
    receiver._start()  # noqa: SLF001 - the engine's own start
    return receiver


def _coalesces(sock: socket.socket) -> bool:
    from ._api import _coalesces as coalesces  # noqa: PLC0415

    return coalesces(sock)


async def send(sock: Any, data: Any, address: Any = None, *, controls: Iterable[Control] = ()) -> int:
    """Send one datagram as portmsg.send() does, waiting for room instead of raising BlockingIOError.

    Platforms:
        Selector loops wait with add_writer; the ProactorEventLoop posts an
        overlapped WSASendMsg through its port.  Under Wine, a send with
        controls is refused (OSError EOPNOTSUPP) as portmsg.send() refuses it.
    """
    inner = _nonblocking(sock)
    family = inner.family
    cdata, name, control = _prepare(inner, family, data, address, controls)
    loop = asyncio.get_running_loop()
    while True:
        try:
            return IMPL.sender.send_encoded(inner, [cdata], control, name, 0)
        except BlockingIOError:
            pass
        if _is_proactor(loop):
            return await _send_overlapped(loop, inner, cdata, name, control)
        ready = loop.create_future()
        fd = inner.fileno()
        loop.add_writer(fd, _set_once, ready)
        try:
            await ready
        finally:
            loop.remove_writer(fd)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def _send_overlapped(
    loop: asyncio.AbstractEventLoop, sock: socket.socket, cdata: Any, name: bytes, control: Any
) -> int:
    from ._iocp import SendOp  # noqa: PLC0415 - Windows only

    proactor = _proactor(loop)
    proactor._register_with_iocp(sock)  # noqa: SLF001
    op = SendOp(IMPL, sock)
    op.start(cdata, name, control)
    done = await proactor._register(op, sock, _dequeued)  # noqa: SLF001
    return done.sent()  # type: ignore[no-any-return]
