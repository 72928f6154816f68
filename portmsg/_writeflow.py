"""The write side of a DatagramTransport: replies held in a delivery, asyncio's flow control, gso=True's runs.

Flow control is asyncio's (transports.py's _FlowControlMixin): pause_writing()
above the high-water mark, resume_writing() at or below the low one, 64 KiB
and 16 KiB by default.  With gso=True, the datagrams one loop iteration's
sendto() calls queue are held and sent at its end, each run of equal-sized
datagrams to one peer with the same controls as one segmented send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _io
from ._types import SegmentSize

if TYPE_CHECKING:
    import asyncio
    import socket
    from collections.abc import Callable

    from ._engines import Engine
    from ._types import Control

__all__ = ["HIGH_WATER", "Pending", "WriteFlow", "gso_runs"]

HIGH_WATER = 64 * 1024  # asyncio's default write buffer limits
_GSO_SEGMENTS = 64  # Linux's UDP_MAX_SEGMENTS before 6.x raised it: the safe bound
_GSO_BYTES = 65507  # the most one UDP datagram over IPv4 carries, and so one GSO send
Pending = tuple[bytes, Any, tuple["Control", ...]]


class WriteFlow:
    """Flow control and GSO holding, over the transport's write buffer count and its _write()."""

    _loop: asyncio.AbstractEventLoop
    _sock: socket.socket
    _protocol: Any
    _gso: list[Pending] | None
    _buffer_size: int
    _high: int
    _low: int
    _protocol_paused: bool
    _replies: tuple[list[bytes], list[_io.Outgoing]] | None
    _lost: bool
    _engine: Engine

    def failed(self, exc: OSError) -> None:
        raise NotImplementedError

    def _write(self, data: Any, out: _io.Outgoing, fallback: Any = None) -> None:
        raise NotImplementedError

    def _guarded(self, call: Callable[..., Any], *args: Any) -> None:
        raise NotImplementedError

    def _send_replies(self) -> None:
        """The replies held in a delivery, in order: one call (sendmmsg where the OS has it), the rest queued."""
        if self._replies is None:
            return
        (datas, outs), self._replies = self._replies, None
        while datas and not self._lost:
            if self._engine.writes or len(datas) == 1:
                for data, out in zip(datas, outs, strict=True):
                    self._write(data, out)
                return
            try:
                sent = _io.try_send_many(self._sock, datas, outs)
            except (BlockingIOError, InterruptedError):
                for data, out in zip(datas, outs, strict=True):
                    self._write(data, out)  # each tries once more, then waits for room in order
                return
            except OSError as exc:
                self.failed(exc)  # the first could not go: the rest are tried again
                sent = 1
            datas, outs = datas[sent:], outs[sent:]

    # -- gso=True: a loop iteration's datagrams as segmented sends -----------------------------

    def _hold(self, data: Any, addr: Any, controls: tuple[Control, ...]) -> None:
        if not self._gso:
            self._loop.call_soon(self._flush_gso)
        self._gso.append((bytes(data), addr, controls))  # type: ignore[union-attr] # a copy: data may change
        self._buffer_size += len(data)
        self._maybe_pause_protocol()

    def _flush_gso(self) -> None:
        """Send what this loop iteration's sendto() calls held, a segmented send per run."""
        if not self._gso:
            return
        pending, self._gso = self._gso, []
        for data, addr, controls, count, size in gso_runs(pending):
            self._buffer_size -= len(data)
            if count == 1:
                self._write(data, _io.prepare(self._sock, addr, controls))
            else:
                segmented = _io.prepare(self._sock, addr, (*controls, SegmentSize(size)))
                self._write(data, segmented, _io.prepare(self._sock, addr, controls))
        self._maybe_resume_protocol()

    def _gso_refused(self) -> None:
        """The route cannot segment: send one by one from now on."""
        if self._gso is not None:
            pending, self._gso = self._gso, None
            for data, addr, controls in pending:
                self._buffer_size -= len(data)
                self._write(data, _io.prepare(self._sock, addr, controls))

    # -- flow control --------------------------------------------------------------------------

    def _maybe_pause_protocol(self) -> None:
        if not self._protocol_paused and self._buffer_size > self._high:
            self._protocol_paused = True
            self._guarded(self._protocol.pause_writing)

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self._buffer_size <= self._low:
            self._protocol_paused = False
            self._guarded(self._protocol.resume_writing)

    def get_write_buffer_size(self) -> int:
        """Bytes waiting to be sent."""
        return self._buffer_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """(low, high) water marks, as asyncio's transports report them."""
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """pause_writing() above high, resume_writing() at or below low (asyncio's rules and defaults)."""
        if high is None:
            high = HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            msg = f"high ({high!r}) must be >= low ({low!r}) must be >= 0"
            raise ValueError(msg)
        self._high, self._low = high, low
        self._maybe_pause_protocol()


def gso_runs(pending: list[Pending]) -> list[tuple[bytes, Any, tuple[Control, ...], int, int]]:
    """Group held datagrams, in order, into (data, addr, controls, count, segment size) runs.

    A run: equal-sized datagrams to one peer with the same controls (its
    last may be shorter), 64 at most and 65,507 bytes in all.
    """
    runs: list[tuple[bytes, Any, tuple[Control, ...], int, int]] = []
    parts: list[bytes] = []
    addr: Any = None
    controls: tuple[Control, ...] = ()
    size = total = 0
    closed = True
    for data, to, with_controls in pending:
        n = len(data)
        if (
            not closed
            and to == addr
            and with_controls == controls
            and 0 < n <= size
            and len(parts) < _GSO_SEGMENTS
            and total + n <= _GSO_BYTES
        ):
            parts.append(data)
            total += n
            closed = n < size  # a shorter datagram ends its run
            continue
        if parts:
            runs.append((b"".join(parts), addr, controls, len(parts), size))
        parts, addr, controls, size, total, closed = [data], to, with_controls, n, n, n == 0
    if parts:
        runs.append((b"".join(parts), addr, controls, len(parts), size))
    return runs
