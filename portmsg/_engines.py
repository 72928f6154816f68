"""The asyncio engines: one socket on one loop, reading and writing, one engine per socket.

readiness: every loop with add_reader (the default loop, uvloop, Windows'
    SelectorEventLoop): add_reader + non-blocking batch receives; add_writer
    while sends wait.
completion: Windows' ProactorEventLoop: overlapped WSARecvMsg kept posted
    through its completion port; one overlapped send at a time, in order.

An engine reads for one owner at a time (a Receiver or a transport; a second
is refused, never silently put in the first's place) and writes for
everyone: a send that finds no room waits in one FIFO, so concurrent senders
complete in the order they asked.  The owner hears `received(messages)`,
`failed(exc)` (an error the OS reports for the socket: reading goes on),
`ended(exc or None)` (the socket is gone) and, for its own queued sends,
`written(size)` and `write_failed(exc)`.  Every owner callback is guarded:
an exception goes to the loop's exception handler and the engine reads on.
The completion engine posts the next receive before it delivers.
"""

from __future__ import annotations

import asyncio
import collections
import sys
import weakref
from typing import TYPE_CHECKING, Any, Protocol

from . import _io

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

    from ._types import Message

__all__ = [
    "BATCH",
    "WAKEUP_LIMIT",
    "Engine",
    "Owner",
    "Write",
    "engine_for",
    "guarded",
    "is_proactor",
    "leftover",
    "report",
]

BATCH = 32
"""Datagrams one receive call takes at most."""
READS_PER_WAKEUP = 4
"""Full batches one readiness wakeup reads at most before other sockets and timers get their turn:
under load a loop iteration (and its epoll_wait) per 128 datagrams, not per 32."""
WAKEUP_LIMIT = BATCH * READS_PER_WAKEUP
"""Datagrams one wakeup hands over at most."""


class Owner(Protocol):
    """What an engine's reading owner hears (a Receiver, a transport)."""

    def received(self, messages: list[Message]) -> None: ...
    def failed(self, exc: OSError) -> None: ...
    def ended(self, exc: OSError | None) -> None: ...
    def written(self, size: int) -> None: ...
    def write_failed(self, exc: OSError) -> None: ...


class Write:
    """One datagram waiting for room: its future (a bare send), or None (the owner's: written())."""

    __slots__ = ("data", "fallback", "future", "out")

    def __init__(self, data: Any, out: _io.Outgoing, future: asyncio.Future[int] | None, fallback: Any) -> None:
        self.data = data
        self.out = out
        self.future = future
        self.fallback = fallback  # a GSO send's plain Outgoing, to resend it piece by piece if refused


class Engine:
    """One socket on one loop; see the module's documentation.  Made by engine_for()."""

    name = ""

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, fd: int) -> None:
        self.loop = loop
        self.sock = sock
        self.fd = fd
        self.owner: Owner | None = None
        """Who reads (and hears of its own queued sends, even after it stopped reading)."""
        self.reading = False
        self.paused = False
        self.writes: collections.deque[Write] = collections.deque()
        """Sends waiting for room, oldest first."""
        self.owned = 0
        """How many of them are the owner's (no future)."""
        self.gso_refused: Callable[[], None] | None = None
        """Called once a route refuses a GSO send (the owner turns GSO off)."""
        self._bufsize = self._ancbufsize = 0
        self._depth = self._count = 1
        self._once = False
        self._watch: asyncio.TimerHandle | None = None

    # -- reading --------------------------------------------------------------------------

    def check_free(self) -> None:
        """RuntimeError if an owner reads this socket already (one reads a socket at a time)."""
        if self.reading:
            msg = (
                f"{self.sock!r} already has a receiver on this loop (a portmsg Receiver or transport): "
                "one reads a socket at a time; close it first"
            )
            raise RuntimeError(msg)

    def open_reading(self, owner: Owner, bufsize: int, ancbufsize: int, depth: int, *, once: bool = False) -> None:
        """Start reading for owner; RuntimeError if another one reads this socket.

        once: one datagram, then nothing more is read (a one-shot receive); the
        owner closes reading when it has it.  Datagrams an earlier owner took
        but could not hand over (`leftovers`) come first.
        """
        self.check_free()
        self.owner, self._bufsize, self._ancbufsize, self._depth = owner, bufsize, ancbufsize, 1 if once else depth
        self._count = 1 if once else BATCH
        self._once = once
        self.reading, self.paused = True, False
        self._watching()
        kept = _LEFTOVERS.pop(self.sock, None)
        if kept:
            self._call(owner.received, list(kept))
            if not self.reading:
                return
        self._start_reading()

    def keep(self, message: Message) -> None:
        """A datagram received for an owner that left without it: the next owner of the socket gets it first."""
        _LEFTOVERS.setdefault(self.sock, collections.deque()).append(message)

    def pause_reading(self) -> None:
        """Read no more until resume_reading() (what is in flight still arrives)."""
        if self.reading and not self.paused:
            self.paused = True
            self._pause_reading()

    def resume_reading(self) -> None:
        """Read again after pause_reading()."""
        if self.reading and self.paused:
            self.paused = False
            self._start_reading()

    def close_reading(self) -> None:
        """The owner is done: stop reading (cancelling receives in flight); writes go on."""
        if self.reading:
            self._stop_reading()
            self.reading = False
            self.release()

    # -- writing --------------------------------------------------------------------------

    def write(
        self, data: Any, out: _io.Outgoing, future: asyncio.Future[int] | None = None, fallback: Any = None
    ) -> bool:
        """Send now if nothing waits and there is room (True), else queue it behind what waits (False).

        Raises the OSError of an immediate send; a queued send's outcome goes
        to its future, or to the owner (written / write_failed) without one.
        """
        if not self.writes:
            try:
                sent = _io.try_send(self.sock, data, out)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                if fallback is None or not _io.gso_refused(exc):
                    raise
                self._refused_gso()  # the pieces queue below, sent at the next chance
                self._queue(*self._pieces(Write(data, out, future, fallback)))
                return False
            else:
                if future is not None:
                    future.set_result(sent)
                return True
        self._queue(Write(data if type(data) is bytes else bytes(data), out, future, fallback))
        return False

    def _queue(self, *writes: Write) -> None:
        idle = not self.writes
        self.writes.extend(writes)
        self.owned += sum(1 for w in writes if w.future is None)
        if idle:
            self._watching()
            self._start_writing()

    def _pop(self) -> Write:
        write = self.writes.popleft()
        if write.future is None:
            self.owned -= 1
        return write

    def cancel_write(self, future: asyncio.Future[int]) -> None:
        """Take a bare send off the queue (its task was cancelled), unless it is being sent already."""
        for i, write in enumerate(self.writes):
            if write.future is future:
                if i == 0 and self._in_flight():
                    return
                del self.writes[i]
                break
        if not self.writes:
            self._stop_writing()
            self.release()

    def drop_owned_writes(self) -> None:
        """Forget the owner's queued sends (abort); bare sends stay queued."""
        kept = collections.deque(w for w in self.writes if w.future is not None)
        if len(kept) != len(self.writes):
            head_owned = self.writes[0].future is None
            self.writes, self.owned = kept, 0
            if not kept:
                self._stop_writing()
                self.release()
            elif head_owned:
                self._restart_writing()

    def _sent(self, write: Write, result: int | OSError) -> None:
        """A queued send is done: tell whoever asked."""
        if write.future is not None:
            if not write.future.done():
                if isinstance(result, OSError):
                    write.future.set_exception(result)
                else:
                    write.future.set_result(result)
        elif self.owner is not None:
            if isinstance(result, OSError):
                self._call(self.owner.write_failed, result)
            self._call(self.owner.written, len(write.data))

    def _send_failed(self, write: Write, exc: OSError) -> None:
        """The queue's head failed: a refused GSO send takes its place as single datagrams, else report it."""
        self._pop()
        if write.fallback is not None and _io.gso_refused(exc):
            self._refused_gso()
            pieces = self._pieces(write)
            self.writes.extendleft(reversed(pieces))
            self.owned += sum(1 for w in pieces if w.future is None)
        else:
            self._sent(write, exc)

    def _refused_gso(self) -> None:
        if self.gso_refused is not None:
            self._call(self.gso_refused)

    @staticmethod
    def _pieces(write: Write) -> list[Write]:
        """A GSO send's datagrams as single sends (sizes adding up to its own; the last carries its future)."""
        size = write.out.segment
        data = write.data
        pieces = [Write(bytes(data[i : i + size]), write.fallback, None, None) for i in range(0, len(data), size)]
        pieces = pieces or [Write(b"", write.fallback, None, None)]
        pieces[-1].future = write.future
        return pieces

    # -- lifetime -------------------------------------------------------------------------

    def _call(self, callback: Callable[..., None], *args: Any) -> None:
        """An owner callback, guarded: what it raises goes to the loop's exception handler."""
        guarded(self.loop, {}, callback, *args)

    def _watching(self) -> None:
        """A poller forgets a closed descriptor silently: look now and then while there is work."""
        if self._watch is None:
            self._watch = self.loop.call_later(_io.CLOSE_CHECK, self._check_open)

    def _check_open(self) -> None:
        self._watch = None
        if self.sock.fileno() != self.fd:
            self.end()
        elif self.reading or self.writes:
            self._watching()

    def end(self, exc: OSError | None = None) -> None:
        """The socket is gone: stop both directions, fail waiting sends, tell the owner."""
        owner, reading, self.owner, self.reading = self.owner, self.reading, None, False
        if reading:
            self._stop_reading()
        writes, self.writes, self.owned = self.writes, collections.deque(), 0
        if writes:
            self._stop_writing()
        self.release()
        for write in writes:
            if write.future is not None and not write.future.done():
                write.future.set_exception(_io.closed_error())
        if owner is not None and reading:
            self._call(owner.ended, exc)

    def release(self) -> None:
        """Leave the registry once nothing is read or written."""
        if not self.reading and not self.writes:
            self.owner = None
            if self._watch is not None:
                self._watch.cancel()
                self._watch = None
            _forget(self)

    def _registered(self) -> bool:
        """Whether the loop's registration for fd is still this engine's (a reused number is someone else's)."""
        engines = _ENGINES.get(self.loop)
        return engines is not None and engines.get(self.fd) is self

    # -- per mechanism ----------------------------------------------------------------------

    def _start_reading(self) -> None:
        raise NotImplementedError

    def _stop_reading(self) -> None:
        raise NotImplementedError

    def _pause_reading(self) -> None:
        """Read no more for now; what is in flight may still arrive (and is delivered)."""
        self._stop_reading()

    def _start_writing(self) -> None:
        raise NotImplementedError

    def _stop_writing(self) -> None:
        raise NotImplementedError

    def _in_flight(self) -> bool:
        """Whether the queue's head is being sent now (an overlapped send), so it cannot be taken back."""
        return False

    def _restart_writing(self) -> None:
        """The head of the queue changed while writing (abort): nothing to do where each try reads the head."""


class Readiness(Engine):
    """add_reader + non-blocking batch receives; add_writer while sends wait."""

    name = "readiness"

    def _start_reading(self) -> None:
        self.loop.add_reader(self.fd, self._readable)

    def _stop_reading(self) -> None:
        if self._registered():
            self.loop.remove_reader(self.fd)

    def _readable(self) -> None:
        owner = self.owner
        if not self.reading or owner is None:
            return
        for again in range(READS_PER_WAKEUP):
            try:
                batch = _io.receive_batch(self.sock, self._count, self._bufsize, self._ancbufsize)
            except (BlockingIOError, InterruptedError):
                if again:
                    return  # the queue held whole batches: drained
                # Nothing to read: a spurious wakeup, or a queued error (ERRORS on) keeping POLLERR up.
                error = _io.queued_error(self.sock)
                if error is not None:
                    self._rearm()
                    self._call(owner.failed, error)
                return
            except OSError as exc:
                if _io.is_closed(self.sock):
                    self.end()
                    return
                self._rearm()
                self._call(owner.failed, _io.queued_error(self.sock) or exc)  # once, and reading goes on
                return
            self._call(owner.received, batch)
            # A full batch: more is likely queued; read on unless the owner paused, closed or left.
            if len(batch) < self._count or not self.reading or self.paused or self.owner is not owner:
                return

    def _rearm(self) -> None:
        """Uvloop (libuv's uv_poll) drops a reader after POLLERR: register it again, before the owner hears."""
        if self.reading and not self.paused:
            self.loop.remove_reader(self.fd)
            self.loop.add_reader(self.fd, self._readable)

    def _start_writing(self) -> None:
        self.loop.add_writer(self.fd, self._writable)

    def _stop_writing(self) -> None:
        if self._registered():
            self.loop.remove_writer(self.fd)

    def _writable(self) -> None:
        writes = self.writes
        while writes:
            write = writes[0]
            try:
                sent = _io.try_send(self.sock, write.data, write.out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if _io.is_closed(self.sock):
                    self.end()
                    return
                self._send_failed(write, exc)
                continue
            self._pop()
            self._sent(write, sent)
        self._stop_writing()
        self.release()


def guarded(loop: asyncio.AbstractEventLoop, context: dict[str, Any], call: Callable[..., Any], *args: Any) -> None:
    """Call call(*args): what it raises goes to the loop's exception handler, and the caller goes on.

    As asyncio reports a callback's error; `context` adds keys (the transport).
    """
    try:
        call(*args)
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as exc:  # noqa: BLE001 - reported, never lost, never stopping the engine
        report(loop, context, call, exc)


def report(loop: asyncio.AbstractEventLoop, context: dict[str, Any], call: Any, exc: BaseException) -> None:
    """What call raised, to the loop's exception handler."""
    name = getattr(call, "__qualname__", call)
    loop.call_exception_handler({"message": f"Exception in {name!s}", "exception": exc, **context})


# -- one engine per socket and loop ---------------------------------------------------------

# Held weakly both ways: an engine lives while its loop registrations, owner or waiting sends hold it,
# and a closed loop with an engine never released is not kept alive by this table.
_ENGINES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakValueDictionary[int, Engine]] = (
    weakref.WeakKeyDictionary()
)


# Datagrams received for an owner that left before taking them (a one-shot receive cancelled after
# its datagram arrived), per socket, for as long as the socket lives.
_LEFTOVERS: weakref.WeakKeyDictionary[socket.socket, collections.deque[Message]] = weakref.WeakKeyDictionary()


def leftover(sock: socket.socket) -> Message | None:
    """The oldest datagram kept for sock's next owner (see Engine.keep), or None."""
    kept = _LEFTOVERS.get(sock)
    if not kept:
        return None
    message = kept.popleft()
    if not kept:
        del _LEFTOVERS[sock]
    return message


def engine_for(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> Engine:
    """The engine of sock on loop, made on first use: completion on the Proactor, readiness elsewhere."""
    engines = _ENGINES.get(loop)
    if engines is None:
        engines = _ENGINES[loop] = weakref.WeakValueDictionary()
    fd = sock.fileno()
    known = engines.get(fd)
    if known is not None:
        if known.sock is sock or known.sock.fileno() == fd:
            return known  # the same descriptor
        known.end()  # its socket was closed and the number reused: drop its registration first
    # The Proactor first: CPython may give it an add_reader() that runs select()
    # in a thread (gh-81554); overlapped receives need no thread.
    engine: Engine
    if is_proactor(loop):
        from ._completion import Completion  # noqa: PLC0415 - Windows only; it builds on Engine

        engine = Completion(loop, sock, fd)
    else:
        engine = Readiness(loop, sock, fd)
    engines[fd] = engine
    return engine


def _forget(engine: Engine) -> None:
    engines = _ENGINES.get(engine.loop)
    if engines is not None and engines.get(engine.fd) is engine:
        del engines[engine.fd]


def is_proactor(loop: asyncio.AbstractEventLoop) -> bool:
    """Windows' ProactorEventLoop (IOCP, no add_reader)."""
    proactor_loop = getattr(asyncio, "ProactorEventLoop", None)
    return sys.platform == "win32" and proactor_loop is not None and isinstance(loop, proactor_loop)
