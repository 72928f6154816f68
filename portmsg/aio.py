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
from typing import TYPE_CHECKING, Any

from . import _args
from ._api import _coalesces, _prepare
from ._backend import IMPL
from ._engines import BATCH, engine_for, is_proactor, nonblocking, send_overlapped, set_once
from ._transport import DatagramTransport, create_datagram_endpoint
from ._types import Message

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterable

    from ._types import Control

__all__ = [
    "BATCH",
    "DatagramTransport",
    "Receiver",
    "create_datagram_endpoint",
    "is_proactor",
    "open_receiver",
    "send",
]

_END = object()  # queued when the receiver ends: every waiter stops


class Receiver:
    """Datagrams from one socket, received for you; see the module's documentation.

    Made by `open_receiver()`.  Use it as an async context manager, or call
    `close()`.
    """

    def __init__(self, sock: socket.socket, bufsize: int, max_queued: int, depth: int) -> None:
        self._loop = asyncio.get_running_loop()
        self._sock = sock
        self._max_queued = max_queued
        self._queue: collections.deque[Any] = collections.deque()
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._engine = engine_for(self._loop, sock, bufsize, depth, self._deliver_all, self._deliver, self._end)
        self.engine = self._engine.name
        """"readiness" or "completion"."""
        self.closed = False

    def _deliver(self, item: Any) -> None:
        """Queue an OSError for recv() to raise once (or one Message)."""
        self._queue.append(item)
        self._queued()

    def _deliver_all(self, messages: list[Message]) -> None:
        self._queue.extend(messages)
        self._queued()

    def _queued(self) -> None:
        self._wake()
        if len(self._queue) >= self._max_queued:
            self._engine.pause()

    def _wake(self, *, everyone: bool = False) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                if not everyone:
                    return

    def _end(self, error: OSError | None = None) -> None:
        """The socket is gone: queued datagrams stay readable, then `error` (or the closed error) is raised."""
        if self.closed:
            return
        self.closed = True
        self._queue.append(error if error is not None else _closed_error())
        self._queue.append(_END)
        self._wake(everyone=True)

    def _taken(self) -> None:
        if self._engine.paused and len(self._queue) <= self._max_queued // 2:
            self._engine.resume()

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
        item = self._queue[0]
        if item is _END:  # left queued: every later call ends too
            raise _closed_error()
        self._queue.popleft()
        self._taken()
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
            self._engine.stop()
            self._queue.append(_END)
            self._wake(everyone=True)

    async def __aenter__(self) -> Receiver:  # noqa: PYI034 - Self needs 3.11
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


def _closed_error() -> OSError:
    return IMPL.hooks.error(IMPL.hooks.closed)


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
    inner = nonblocking(sock)
    if bufsize is None:
        bufsize = 65535 if _coalesces(inner) else 2048
    bufsize = _args.ssize(bufsize, "bufsize must be 0 or more")
    if max_queued < 1 or depth < 1:
        msg = f"max_queued and depth must be 1 or more, not {max_queued} and {depth}"
        raise ValueError(msg)
    receiver = Receiver(inner, bufsize, max_queued, depth)
    receiver._engine.start()  # noqa: SLF001 - its own engine
    return receiver


async def send(sock: Any, data: Any, address: Any = None, *, controls: Iterable[Control] = ()) -> int:
    """Send one datagram as portmsg.send() does, waiting for room instead of raising BlockingIOError.

    Platforms:
        Selector loops wait with add_writer; the ProactorEventLoop posts an
        overlapped WSASendMsg through its port.  Under Wine, a send with
        controls is refused (OSError EOPNOTSUPP) as portmsg.send() refuses it.
    """
    inner = nonblocking(sock)
    cdata, name, control = _prepare(inner, inner.family, data, address, controls)
    loop = asyncio.get_running_loop()
    while True:
        try:
            return IMPL.sender.send_encoded(inner, [cdata], control, name, 0)
        except BlockingIOError:
            pass
        if is_proactor(loop):
            return await send_overlapped(loop, inner, cdata, name, control)
        ready = loop.create_future()
        fd = inner.fileno()
        loop.add_writer(fd, set_once, ready)
        try:
            await ready
        finally:
            loop.remove_writer(fd)
