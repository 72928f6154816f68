"""An asyncio DatagramTransport over portmsg's engines: framework code runs unchanged, and gets the metadata.

A protocol that defines `messages_received(list[Message])` gets each batch,
one that defines `message_received(Message)` each datagram, and a plain
asyncio.DatagramProtocol `datagram_received(data, addr)` exactly as from
asyncio's own transport: every datagram whole (a coalesced burst split into
its datagrams first; one longer than `bufsize` is not handed over cut, but
reported to `error_received` as OSError(EMSGSIZE)).  On a socket bound to a
wildcard address, a reply sent with a plain `sendto(data, peer)` inside a
datagram's own callback leaves from the address that datagram was sent to;
later, from the address that peer last sent to.
"""

from __future__ import annotations

import asyncio
import asyncio.trsock
import errno
import warnings
from typing import TYPE_CHECKING, Any

from . import _io
from ._engines import engine_for, guarded, report
from ._replies import ReplySources
from ._types import MsgFlag, SegmentSize
from ._writeflow import HIGH_WATER, Pending, WriteFlow

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterable

    from ._types import Control, Enabled, Message

__all__ = ["DatagramTransport"]

_PLAIN_OUTS = 4096  # encoded destinations kept for held replies
_TRUNC = MsgFlag.TRUNC


class DatagramTransport(WriteFlow, asyncio.DatagramTransport):
    """asyncio.DatagramTransport over portmsg's engines (readiness or the Proactor's completion port).

    Adds `sendmsg(data, addr, *, controls)`.  Made by `portmsg.aio.create_datagram_endpoint()`.
    Not thread-safe: call it from its loop's thread, as asyncio's own transports.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        *,
        address: Any,
        enabled: Enabled,
        reply_from_destination: bool,
        why_not_pinned: str | None = None,
        gso: bool = False,
        batch_replies: bool = True,
    ) -> None:
        try:
            peername = sock.getpeername()
        except OSError:
            peername = None
        try:
            sockname = sock.getsockname()
        except OSError:  # Windows: an unbound socket has no name (asyncio's transports give None too)
            sockname = None
        super().__init__(
            {
                "socket": asyncio.trsock.TransportSocket(sock),
                "sockname": sockname,
                "peername": peername,
                "portmsg.enabled": enabled,
                "portmsg.reply_from_destination": reply_from_destination,
                "portmsg.why_not_pinned": why_not_pinned,
            }
        )
        self._loop = loop
        self._sock = sock
        self._address = address  # sendto()'s default destination (asyncio's remote_addr), or None
        self._connected = peername is not None
        self._protocol = protocol
        self._engine = engine_for(loop, sock)
        self._engine.gso_refused = self._gso_refused
        self._gso: list[Pending] | None = [] if gso else None
        self._batch_replies = batch_replies and not gso
        self._replies: tuple[list[bytes], list[_io.Outgoing]] | None = None  # held during a delivery
        self._plain_outs: dict[Any, _io.Outgoing] = {}
        self._buffer_size = 0
        self._high, self._low = HIGH_WATER, HIGH_WATER // 4
        self._protocol_paused = False
        self._closing = False
        self._lost = False
        self._pins: ReplySources | None = ReplySources(sock) if reply_from_destination else None
        self._deliver = self._dispatcher(protocol)
        loop.call_soon(protocol.connection_made, self)

    # -- receiving (the engine's owner callbacks) ----------------------------------------------

    def _dispatcher(self, protocol: Any) -> Callable[[list[Message]], None]:
        self._many = getattr(protocol, "messages_received", None)
        self._one = getattr(protocol, "message_received", None)
        if self._many is not None:
            return self._deliver_batch
        if self._one is not None:
            return self._deliver_messages
        self._plain = protocol.datagram_received
        return self._deliver_datagrams

    def received(self, messages: list[Message]) -> None:
        """A batch from the engine, handed to the protocol as it asks for it; the replies it made, sent at once."""
        if not self._batch_replies:
            self._deliver(messages)
            return
        self._replies = ([], [])
        try:
            self._deliver(messages)
        finally:
            self._send_replies()

    def _deliver_batch(self, messages: list[Message]) -> None:
        if self._closing:
            return
        if self._pins is not None:
            for message in messages:
                self._pins.note(message)
        self._many(messages)  # type: ignore[misc]

    def _deliver_messages(self, messages: list[Message]) -> None:
        one, note = self._one, self._pins.note if self._pins is not None else None
        for message in messages:
            if self._closing:
                return  # close() in a callback: nothing more is delivered
            if note is not None:
                note(message)
            try:
                one(message)  # type: ignore[misc]
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001 - reported, and delivery goes on
                report(self._loop, {"transport": self}, one, exc)

    def _deliver_datagrams(self, messages: list[Message]) -> None:
        plain, note = self._plain, self._pins.note if self._pins is not None else None
        for message in messages:
            if self._closing:
                return
            if note is not None:
                note(message)
            if message[2] or (message[3] and _coalesced(message[3])):
                self._deliver_special(message)  # cut, or a coalesced burst
                continue
            try:
                plain(message[0], message[1])
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001 - reported, and delivery goes on
                report(self._loop, {"transport": self}, plain, exc)

    def _deliver_special(self, message: Message) -> None:
        """A datagram that cannot go to datagram_received as it is.

        A coalesced burst's datagrams go one by one (whole ones only), and
        what was cut is reported as EMSGSIZE instead of handed over.
        """
        pieces = message.segments() if _coalesced(message[3]) else [] if message[2] & _TRUNC else [message[0]]
        for piece in pieces:
            if self._closing:
                return
            self._guarded(self._plain, piece, message[1])
        if message[2] & _TRUNC:
            self.failed(OSError(errno.EMSGSIZE, f"a datagram from {message[1]} was longer than bufsize: not delivered"))

    def _guarded(self, call: Callable[..., Any], *args: Any) -> None:
        """A protocol callback: what it raises goes to the loop's exception handler, and delivery goes on."""
        guarded(self._loop, {"transport": self}, call, *args)

    def failed(self, exc: OSError) -> None:
        """An error the OS reports for the socket (ICMP): error_received(), and reading goes on."""
        self._guarded(self._protocol.error_received, exc)

    def ended(self, exc: OSError | None) -> None:
        """The socket is gone."""
        self._force_close(exc)

    def pause_reading(self) -> None:
        """Stop reading until resume_reading() (datagrams in flight still arrive)."""
        self._engine.pause_reading()

    def resume_reading(self) -> None:
        """Read again."""
        self._engine.resume_reading()

    # -- sending --------------------------------------------------------------------------

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send one datagram; on a wildcard-bound socket a known peer's reply leaves from the address it asked."""
        addr = self._destination(data, addr)
        if self._closing:
            return  # as asyncio's transports: nothing goes out after close()
        if addr is not None and self._pins is not None:
            out, controls = self._pinned(addr)
            if out is not None:
                if self._gso is not None:
                    self._hold(data, addr, controls)
                else:
                    self._write(data, out)
                return
        if self._gso is not None:
            self._hold(data, addr, ())
            return
        self._send_plain(data, addr)

    def _send_plain(self, data: Any, addr: Any) -> None:
        """A datagram with nothing to attach."""
        if self._replies is not None:  # inside a delivery: sent with the other replies, in one call
            self._write(data, self._plain_out(addr))
            return
        if not self._engine.writes:
            try:  # the stdlib's one C call, as asyncio's transports make
                if addr is None:
                    self._sock.send(data)
                else:
                    self._sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                self.failed(exc)
                return
            else:
                return
        self._write(data, self._plain_out(addr))

    def sendmsg(self, data: Any, addr: Any = None, *, controls: Iterable[Control] = ()) -> None:
        """Send one datagram with control objects attached (as portmsg.send()); ValueError for one that cannot go.

        `controls` is keyword-only, as in portmsg.send() and portmsg.aio.send().
        """
        addr = self._destination(data, addr)
        controls = tuple(controls)
        out = _io.prepare(self._sock, addr, controls)  # refuses a bad control now, whatever happens next
        if self._closing:
            return
        if self._gso is not None:
            self._hold(data, addr, controls)
        else:
            self._write(data, out)

    def _destination(self, data: Any, addr: Any) -> Any:
        """Check data and addr as asyncio's sendto() does; the address to send to (None: connected)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            msg = f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            raise TypeError(msg)
        if self._address is not None:
            if addr not in (None, self._address):
                msg = f"Invalid address: must be None or {self._address}"
                raise ValueError(msg)
            return None if self._connected else self._address
        return addr

    def _pinned(self, addr: Any) -> tuple[_io.Outgoing | None, tuple[Control, ...]]:
        """The encoded source to answer addr from (None: nothing known), built once per peer and source."""
        try:
            return self._pins.source_for(addr)  # type: ignore[union-attr]
        except OSError as exc:
            if not _io.controls_refused(exc):
                raise
            self._pins = None  # this platform cannot send controls (Wine): reply without them
            self._extra_info(reply_from_destination=False, why_not_pinned=str(exc))
            return None, ()

    def _plain_out(self, addr: Any) -> _io.Outgoing:
        """A destination with no controls, encoded once per peer."""
        out = self._plain_outs.get(addr)
        if out is None:
            out = _io.prepare(self._sock, addr)
            if len(self._plain_outs) >= _PLAIN_OUTS:
                self._plain_outs.clear()
            self._plain_outs[addr] = out
        return out

    def _write(self, data: Any, out: _io.Outgoing, fallback: Any = None) -> None:
        """Send through the engine: now, or queued behind what waits (counted in the write buffer).

        Inside a delivery (batch_replies) the datagram is held and goes with the other
        replies made there, in one call once the protocol's callbacks return.
        """
        replies = self._replies
        if replies is not None and fallback is None:
            replies[0].append(data if type(data) is bytes else bytes(data))
            replies[1].append(out)
            return
        try:
            sent = self._engine.write(data, out, None, fallback)
        except OSError as exc:
            self.failed(exc)
            return
        if not sent:
            self._buffer_size += len(data)
            self._maybe_pause_protocol()

    def written(self, size: int) -> None:
        """One of this transport's queued datagrams went (or failed)."""
        self._buffer_size -= size
        self._maybe_resume_protocol()
        if self._closing and not self._lost and not self._engine.owned:
            self._lose(None)

    def write_failed(self, exc: OSError) -> None:
        """A queued datagram could not be sent."""
        self.failed(exc)

    # -- lifetime ---------------------------------------------------------------------------

    def is_closing(self) -> bool:
        """True once close() or abort() was called, or the socket is gone."""
        return self._closing or self._lost

    def close(self) -> None:
        """Stop reading; send what is buffered, then connection_lost(None) and close the socket."""
        if self._closing or self._lost:
            return
        self._flush_gso()
        self._send_replies()  # made before close(): they go
        self._closing = True
        self._engine.close_reading()
        if not self._engine.owned:
            self._lose(None)

    def abort(self) -> None:
        """Close at once, dropping what is buffered."""
        self._force_close(None)

    def _force_close(self, exc: OSError | None) -> None:
        if self._lost:
            return
        self._closing = True
        self._replies = None
        if self._gso:
            self._gso.clear()
        self._engine.close_reading()
        self._engine.drop_owned_writes()
        self._buffer_size = 0
        self._lose(exc)

    def _lose(self, exc: OSError | None) -> None:
        self._lost = True
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: OSError | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._engine.end()  # bare sends still waiting on this socket fail: it closes now
            self._sock.close()

    def __del__(self) -> None:
        if not getattr(self, "_lost", True):
            warnings.warn(f"unclosed transport {self!r}", ResourceWarning, source=self, stacklevel=1)
            self._engine.end()
            self._sock.close()

    def _extra_info(self, *, reply_from_destination: bool, why_not_pinned: str) -> None:
        extra = self._extra  # type: ignore[attr-defined] # asyncio.BaseTransport's own mapping
        extra["portmsg.reply_from_destination"] = reply_from_destination
        extra["portmsg.why_not_pinned"] = why_not_pinned

    def get_protocol(self) -> asyncio.BaseProtocol:
        protocol: asyncio.BaseProtocol = self._protocol
        return protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._deliver = self._dispatcher(protocol)


def _coalesced(controls: tuple[Control, ...]) -> bool:
    for control in controls:  # noqa: SIM110 - any() would build a generator per datagram
        if type(control) is SegmentSize:
            return True
    return False
