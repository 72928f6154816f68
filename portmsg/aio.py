"""asyncio: receive and send datagrams with their metadata without blocking the event loop.

    async with portmsg.aio.open_receiver(sock) as rx:   # sock: a non-blocking datagram socket
        msg = await rx.recv()                            # a portmsg.Message, as portmsg.recv() gives
        batch = await rx.recv_many(64)                   # one wait, then what else is queued
        async for msg in rx: ...                         # until close()
    await portmsg.aio.send(sock, b"answer", msg.address, controls=msg.reply_controls())

Two engines, picked by the running loop:

- readiness, on every loop with `add_reader` (the default loop on Linux and
  macOS, `SelectorEventLoop` on Windows, uvloop): `add_reader` plus
  non-blocking batch receives, at most 32 datagrams per wakeup;
- completion, on Windows' default `ProactorEventLoop` (IOCP, no `add_reader`):
  `depth` overlapped WSARecvMsg kept posted, completed through the proactor's
  port and delivered in posting order.  It relies on the proactor's private
  `_register_with_iocp` and `_register(ov, obj, callback)` (unchanged from
  CPython 3.8 to 3.14), checked when a receiver opens: where they differ,
  `open_receiver` raises NotImplementedError naming the loop and the way out.

One socket has one engine per loop: one receiver (a second is refused with
RuntimeError until the first is closed) and one queue of sends waiting for
room, so concurrent `send()` calls complete in the order they were made.

The receives belong to the Receiver, not to the task awaiting `recv()`:
cancelling or timing out `recv()` never loses a datagram, and the datagram a
cancelled task was woken for goes to the next waiting task.  Each datagram
queued wakes one waiting task.  An error the OS reports for the socket
(ECONNREFUSED, WSAECONNRESET, WSAENETRESET, an error Linux queued with
ERRORS on) is raised once by `recv()`, and reading goes on.  A queue holding
`max_queued` datagrams stops reading until half is taken: the kernel's
buffer absorbs the burst.  A socket closed under the receiver ends it:
`recv()` raises the closed-socket error and iteration stops.  Close the
receiver before the socket.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import warnings
from typing import TYPE_CHECKING, Any

from . import _io
from ._endpoint import create_datagram_endpoint
from ._engines import BATCH, WAKEUP_LIMIT, engine_for, is_proactor, leftover
from ._switch import install, loop_factory, run, uninstall
from ._transport import DatagramTransport
from ._types import Message

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterable

    from ._types import Control

__all__ = [
    "BATCH",
    "WAKEUP_LIMIT",
    "DatagramTransport",
    "Receiver",
    "create_datagram_endpoint",
    "install",
    "is_proactor",
    "loop_factory",
    "open_receiver",
    "recv",
    "run",
    "send",
    "sock_recvmsg",
    "uninstall",
]

_END = object()  # queued when the receiver ends: every waiter stops


class Receiver:
    """Datagrams from one socket, received for you; see the module's documentation.

    Made by `open_receiver()`.  Use it as an async context manager, or call
    `close()`.  Not thread-safe: use it from its loop's thread, as asyncio's
    own objects.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, max_queued: int) -> None:
        self._loop = loop
        self._sock = sock
        self._max_queued = max_queued
        self._queue: collections.deque[Any] = collections.deque()
        self._others = 0  # queued items that are not Messages (errors, the end): none lets recv_many take all at once
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._engine = engine_for(loop, sock)
        self.engine = self._engine.name
        """"readiness" or "completion"."""
        self.closed = True  # until open() succeeds

    def _open(self, bufsize: int, ancbufsize: int, depth: int) -> None:
        self._engine.open_reading(self, bufsize, ancbufsize, depth)
        self.closed = False

    # -- what the engine tells its owner -----------------------------------------------------

    def received(self, messages: list[Message]) -> None:
        """Queue a batch, waking one waiting task per datagram."""
        self._queue.extend(messages)
        self._wake(len(messages))
        if len(self._queue) >= self._max_queued:
            self._engine.pause_reading()

    def failed(self, exc: OSError) -> None:
        """Queue an error for recv() to raise once."""
        self._queue.append(exc)
        self._others += 1
        self._wake(1)

    def ended(self, exc: OSError | None) -> None:
        """The socket is gone: queued datagrams stay readable, then `exc` (or the closed error) is raised."""
        if not self.closed:
            self.closed = True
            self._queue.append(exc if exc is not None else _io.closed_error())
            self._queue.append(_END)
            self._others += 2
            self._wake(len(self._waiters))

    def written(self, size: int) -> None:
        """A receiver queues no sends of its own."""

    def write_failed(self, exc: OSError) -> None:
        """A receiver queues no sends of its own."""

    def _wake(self, count: int) -> None:
        """Wake up to count waiting tasks, oldest first (asyncio.Queue's rule: one per item)."""
        waiters = self._waiters
        while count and waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                count -= 1

    def _taken(self) -> None:
        if self._engine.paused and len(self._queue) <= self._max_queued // 2:
            self._engine.resume_reading()

    # -- the user's side -------------------------------------------------------------------

    async def recv(self) -> Message:
        """The next datagram.  Raises the OS's error for the socket once, or the closed error at the end."""
        queue = self._queue
        while not queue:
            waiter = self._loop.create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # cancellation-safe: nothing is taken before this returns
            except BaseException:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
                if queue and not waiter.cancelled():
                    self._wake(1)  # woken, then cancelled: the next task takes what this one would have
                raise
        item = queue[0]
        if item is _END:  # left queued: every later call ends too
            raise _io.closed_error()
        queue.popleft()
        self._taken()
        if isinstance(item, BaseException):
            self._others -= 1
            raise item
        return item  # type: ignore[no-any-return]

    async def recv_many(self, max_messages: int = 64) -> list[Message]:
        """Wait for one datagram, then take what else is queued: max_messages (1 or more) at most."""
        if max_messages < 1:
            msg = f"max_messages must be 1 or more, not {max_messages}"
            raise ValueError(msg)
        batch = [await self.recv()]
        queue = self._queue
        if not self._others:  # only Messages: taken by C calls, no Python per datagram
            if len(queue) < max_messages:
                batch += queue
                queue.clear()
            else:
                batch += itertools.starmap(queue.popleft, itertools.repeat((), max_messages - 1))
        else:
            take = queue.popleft
            while len(batch) < max_messages and queue and type(queue[0]) is Message:
                batch.append(take())
        self._taken()
        if queue and self._waiters:
            self._wake(1)
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
        """Stop receiving (cancelling overlapped receives in flight); a waiting recv() raises the closed error."""
        if not self.closed:
            self.closed = True
            self._engine.close_reading()
            self._queue.append(_END)
            self._others += 1
            self._wake(len(self._waiters))

    def __del__(self) -> None:
        if not getattr(self, "closed", True):
            warnings.warn(f"unclosed portmsg Receiver on {self._sock!r}", ResourceWarning, source=self, stacklevel=1)
            with contextlib.suppress(Exception):  # the loop may be closed already
                self._engine.close_reading()

    async def __aenter__(self) -> Receiver:  # noqa: PYI034 - Self needs 3.11
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def open_receiver(
    sock: Any,
    *,
    bufsize: int | None = None,
    ancbufsize: int | None = None,
    max_queued: int = 1024,
    depth: int = 4,
) -> Receiver:
    """A Receiver for sock on the running loop.

    Args:
        sock: a non-blocking datagram socket, or asyncio's TransportSocket of one.
        bufsize: the most bytes of data per datagram; None: 65535, every UDP
            datagram whole.  A longer datagram arrives cut, with MsgFlag.TRUNC.
        ancbufsize: control buffer bytes per datagram; None: room for every
            control a datagram of this family can carry.
        max_queued: datagrams held before reading pauses.
        depth: overlapped receives kept posted (completion engine only).

    Raises:
        TypeError: not a socket, or a TCP socket.
        OSError: a closed socket.
        ValueError: a blocking socket, or a size out of range.
        RuntimeError: the socket already has a receiver or transport on this loop.
        NotImplementedError: a loop with neither add_reader() nor the proactor internals relied on.

    """
    inner = _io.async_socket(sock, "portmsg.aio.open_receiver")
    bufsize, ancbufsize = _io.sizes(inner, bufsize, ancbufsize)
    if max_queued < 1 or depth < 1:
        msg = f"max_queued and depth must be 1 or more, not {max_queued} and {depth}"
        raise ValueError(msg)
    receiver = Receiver(asyncio.get_running_loop(), inner, max_queued)
    receiver._open(bufsize, ancbufsize, depth)  # noqa: SLF001 - made here
    return receiver


class _OneShot:
    """The owner of a one-shot recv(): the first datagram (or error) into a future, then reading stops."""

    def __init__(self, engine: Any, future: asyncio.Future[Message]) -> None:
        self._engine, self.future = engine, future

    def received(self, messages: list[Message]) -> None:
        self._engine.close_reading()
        if self.future.done():  # cancelled meanwhile: nothing may be lost
            for message in messages:
                self._engine.keep(message)
            return
        self.future.set_result(messages[0])
        for message in messages[1:]:
            self._engine.keep(message)

    def failed(self, exc: OSError) -> None:
        self._engine.close_reading()
        if not self.future.done():
            self.future.set_exception(exc)

    def ended(self, exc: OSError | None) -> None:
        if not self.future.done():
            self.future.set_exception(exc if exc is not None else _io.closed_error())

    def written(self, size: int) -> None:
        """A one-shot receive queues no sends."""

    def write_failed(self, exc: OSError) -> None:
        """A one-shot receive queues no sends."""


async def recv(sock: Any, bufsize: int | None = None, *, ancbufsize: int | None = None) -> Message:
    """One datagram, as portmsg.recv() gives it, waiting without blocking the loop (as portmsg.trio.recv).

    Tries the non-blocking receive first and waits only when nothing is
    queued; one datagram is read, never more.  Cancelling it loses nothing:
    a datagram that arrived for a cancelled call goes to the socket's next
    receive (this one, a Receiver, an endpoint).  For a stream of datagrams
    a Receiver is cheaper (it keeps reading).  RuntimeError while a Receiver
    or endpoint reads the socket.

    Platforms:
        On the ProactorEventLoop one overlapped WSARecvMsg is posted; a
        cancellation cancels it, and a datagram its completion had already
        taken when the cancellation landed is lost there (use a Receiver where
        that matters: it is cancelled only by close()).
    """
    inner = _io.async_socket(sock, "portmsg.aio.recv")
    bufsize, ancbufsize = _io.sizes(inner, bufsize, ancbufsize)
    loop = asyncio.get_running_loop()
    engine = engine_for(loop, inner)
    engine.check_free()
    kept = leftover(inner)
    if kept is not None:
        return kept
    if not is_proactor(loop):
        try:
            return _io.receive_batch(inner, 1, bufsize, ancbufsize)[0]
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            queued = _io.queued_error(inner)
            raise (queued or exc) from None
    owner = _OneShot(engine, loop.create_future())
    engine.open_reading(owner, bufsize, ancbufsize, 1, once=True)
    try:
        return await owner.future
    except asyncio.CancelledError:
        if owner.future.done() and not owner.future.cancelled() and owner.future.exception() is None:
            engine.keep(owner.future.result())  # it arrived, this task left: the next receive gets it
        raise
    finally:
        if engine.reading and engine.owner is owner:
            engine.close_reading()


async def sock_recvmsg(
    sock: Any, bufsize: int, ancbufsize: int = 0, flags: int = 0
) -> tuple[bytes, list[tuple[int, int, bytes]], int, Any]:
    """Receive like `sock.recvmsg(bufsize[, ancbufsize[, flags]])`, waiting without blocking the loop.

    asyncio's shape, next to `loop.sock_recvfrom()`: the stdlib's tuple with
    native numbers, as `portmsg.recvmsg()` returns it, on every platform.
    Arguments are checked as the stdlib checks them.  RuntimeError while a
    Receiver or endpoint reads the socket.

    Platforms:
        Selector loops (and uvloop) wait with add_reader, then receive; the
        ProactorEventLoop posts one overlapped WSARecvMsg, and a datagram its
        completion took when a cancellation landed is lost there.
    """
    inner = _io.async_socket(sock, "portmsg.aio.sock_recvmsg")
    loop = asyncio.get_running_loop()
    engine = engine_for(loop, inner)
    engine.check_free()
    try:
        return _io.recvmsg_now(inner, bufsize, ancbufsize, flags)
    except (BlockingIOError, InterruptedError):
        pass
    if is_proactor(loop):
        from ._completion import receive_once  # noqa: PLC0415 - Windows only

        return await receive_once(loop, inner, bufsize, ancbufsize, flags)
    fd = inner.fileno()
    while True:
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, _set_once, ready)
        try:
            await ready
        finally:
            loop.remove_reader(fd)
        try:
            return _io.recvmsg_now(inner, bufsize, ancbufsize, flags)
        except (BlockingIOError, InterruptedError):
            error = _io.queued_error(inner)  # a queued error (ERRORS on) keeps the socket "readable"
            if error is not None:
                raise error from None


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def send(sock: Any, data: Any, address: Any = None, *, controls: Iterable[Control] = ()) -> int:
    """Send one datagram as portmsg.send() does, waiting for room instead of raising BlockingIOError.

    Sends on one socket leave in the order they were made, however many
    tasks send at once: one that finds no room waits behind those before it.
    Cancelling a waiting send takes it off the queue unsent (on the Proactor,
    unless its overlapped send already completed).

    Platforms:
        Selector loops wait with add_writer; the ProactorEventLoop posts an
        overlapped WSASendMsg through its port.  Under Wine, a send with
        controls is refused (OSError EOPNOTSUPP) as portmsg.send() refuses it.
    """
    inner = _io.async_socket(sock, "portmsg.aio.send")
    out = _io.prepare(inner, address, controls)
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    engine = engine_for(loop, inner)
    if engine.write(data, out, future):
        engine.release()  # sent at once: keep no engine for it
        return future.result()
    try:
        return await future
    except asyncio.CancelledError:
        engine.cancel_write(future)
        raise


def __dir__() -> list[str]:
    return sorted(__all__)
