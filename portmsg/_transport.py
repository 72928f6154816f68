"""An asyncio DatagramTransport over portmsg: framework code runs unchanged, and gets the metadata.

A protocol that defines `messages_received(list[Message])` gets each batch,
one that defines `message_received(Message)` each datagram, and a plain
asyncio.DatagramProtocol `datagram_received(data, addr)` exactly as from
asyncio's own transport (a coalesced burst split into its datagrams first).
On a socket bound to a wildcard address, a reply sent with a plain
`sendto(data, peer)` leaves from the address that peer last sent to.
"""

from __future__ import annotations

import asyncio
import asyncio.trsock
import collections
import contextlib
import errno
import ipaddress
import socket
from typing import TYPE_CHECKING, Any

from ._api import _prepare, enable
from ._backend import IMPL
from ._engines import engine_for, is_proactor, nonblocking, send_overlapped
from ._types import Feature, Message, MsgFlag, SegmentSize

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._types import Control

__all__ = ["DatagramTransport", "create_datagram_endpoint"]

_SOURCES = 4096
"""Peers whose last destination address is remembered for replies; the oldest is forgotten first."""
_HIGH_WATER = 64 * 1024  # asyncio's default write buffer limits
_NO_CONTROLS: tuple[Control, ...] = ()
_GSO_SEGMENTS = 64  # Linux's UDP_MAX_SEGMENTS before 6.x raised it: the safe bound
_GSO_BYTES = 65507  # the most one UDP datagram over IPv4 carries, and so one GSO send
# A GSO send this route cannot do (no checksum offload: EIO; too large or too many: EINVAL).
_GSO_REFUSED = frozenset({errno.EIO, errno.EINVAL, errno.EOPNOTSUPP, errno.EMSGSIZE})


def _gso_runs(
    pending: list[tuple[bytes, Any, tuple[Control, ...]]],
) -> list[tuple[bytes, Any, tuple[Control, ...], int, int]]:
    """Group queued datagrams, in order, into (data, addr, controls, count, segment size) runs."""
    runs: list[tuple[bytes, Any, tuple[Control, ...], int, int]] = []
    parts: list[bytes] = []
    addr: Any = None
    controls: tuple[Control, ...] = ()
    size = total = 0
    closed = True

    def finish() -> None:
        if parts:
            runs.append((b"".join(parts), addr, controls, len(parts), size))

    for data, to, with_controls in pending:
        n = len(data)
        joins = (
            not closed
            and to == addr
            and with_controls == controls
            and 0 < n <= size
            and len(parts) < _GSO_SEGMENTS
            and total + n <= _GSO_BYTES
        )
        if joins:
            parts.append(data)
            total += n
            closed = n < size  # a shorter datagram ends its run
            continue
        finish()
        parts, addr, controls, size, total, closed = [data], to, with_controls, n, n, n == 0
    finish()
    return runs


class DatagramTransport(asyncio.DatagramTransport):
    """asyncio.DatagramTransport over portmsg's engines (readiness or the Proactor's completion port).

    Adds `sendmsg(data, addr, controls)`.  See `create_datagram_endpoint()`.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        sock: socket.socket,
        protocol: asyncio.BaseProtocol,
        *,
        peer: Any,
        bufsize: int,
        depth: int,
        reply_from_destination: bool,
        gso: bool = False,
    ) -> None:
        super().__init__({"socket": asyncio.trsock.TransportSocket(sock)})
        self._gso: list[tuple[bytes, Any, tuple[Control, ...]]] | None = [] if gso else None
        self._loop = loop
        self._sock = sock
        self._family = sock.family
        self._protocol = protocol
        self._peer = peer
        self._buffer: collections.deque[tuple[Any, bytes, tuple[Any, int], int]] = collections.deque()
        self._buffer_size = 0
        self._high, self._low = _HIGH_WATER, _HIGH_WATER // 4
        self._writing = False  # add_writer registered, or an overlapped send in flight
        self._protocol_paused = False
        self._closing = False
        self._lost = False
        self._sources: dict[Any, tuple[tuple[Control, ...], MsgFlag]] | None = {} if reply_from_destination else None
        self._dispatch = self._dispatcher(protocol)
        self._engine = engine_for(loop, sock, bufsize, depth, self._received, self._error, self._ended)
        loop.call_soon(self._connect)

    def _connect(self) -> None:
        self._protocol.connection_made(self)
        if not self._closing:
            self._engine.start()

    # -- receiving ------------------------------------------------------------------------

    def _dispatcher(self, protocol: Any) -> Callable[[list[Message]], None]:
        many, one = getattr(protocol, "messages_received", None), getattr(protocol, "message_received", None)
        if many is not None:
            return many  # type: ignore[no-any-return]
        if one is not None:
            return lambda messages: self._each(one, messages)
        plain = protocol.datagram_received
        return lambda messages: self._each(plain, messages, datagrams=True)

    def _each(self, call: Callable[..., Any], messages: list[Message], *, datagrams: bool = False) -> None:
        """One call per message (or per datagram of a coalesced burst); an exception does not lose the rest."""
        for message in messages:
            try:
                if not datagrams:
                    call(message)
                elif any(type(c) is SegmentSize for c in message[3]):
                    for piece in message.segments():
                        call(piece, message[1])
                else:
                    call(message[0], message[1])
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as exc:  # noqa: BLE001 - reported as asyncio reports a callback's error
                self._loop.call_exception_handler(
                    {"message": "Exception in a protocol's receive callback", "exception": exc, "transport": self}
                )

    def _received(self, messages: list[Message]) -> None:
        sources = self._sources
        if sources is not None:
            for message in messages:
                if message[1] not in sources and len(sources) >= _SOURCES:
                    del sources[next(iter(sources))]
                sources[message[1]] = (message[3], message[2])
        self._dispatch(messages)

    def _error(self, exc: OSError) -> None:
        self._protocol.error_received(exc)  # type: ignore[attr-defined]

    def _ended(self, exc: OSError | None) -> None:
        self._force_close(exc)

    def pause_reading(self) -> None:
        """Stop reading until resume_reading() (datagrams in flight still arrive)."""
        self._engine.pause()

    def resume_reading(self) -> None:
        """Read again."""
        self._engine.resume()

    # -- sending --------------------------------------------------------------------------

    def sendto(self, data: Any, addr: Any = None) -> None:
        """Send one datagram; on a wildcard-bound socket a known peer's reply leaves from the address it asked."""
        self._send(data, addr, None)

    def sendmsg(self, data: Any, addr: Any = None, controls: Iterable[Control] = ()) -> None:
        """Send one datagram with control objects attached (as portmsg.send()); ValueError for one that cannot go."""
        self._send(data, addr, tuple(controls))

    def _send(self, data: Any, addr: Any, controls: tuple[Control, ...] | None) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            msg = f"data argument must be a bytes-like object, not {type(data).__name__!r}"
            raise TypeError(msg)
        if self._peer is not None:
            if addr not in (None, self._peer):
                msg = f"Invalid address: must be None or {self._peer}"
                raise ValueError(msg)
            addr = None
        if self._lost or self._closing:
            return  # as asyncio's transports: nothing goes out after close()
        pinned = controls is None and addr is not None and self._sources is not None
        if controls is None:
            controls = _reply_controls(self._sources.get(addr)) if pinned else _NO_CONTROLS  # type: ignore[union-attr]
        if self._gso is not None:
            _prepare(self._sock, self._family, b"", addr, controls)  # refuse a bad address or control now
            if not self._gso:
                self._loop.call_soon(self._flush_gso)
            self._gso.append((bytes(data), addr, controls))  # a copy: data may change before the flush
            self._buffer_size += len(data)
            self._maybe_pause_protocol()
            return
        self._transmit(data, addr, controls, pinned=pinned)

    def _transmit(
        self, data: Any, addr: Any, controls: tuple[Control, ...], *, pinned: bool = False, pieces: int = 1
    ) -> None:
        """Send now, or buffer behind what waits; `pieces`: datagrams in one GSO send (data cut evenly)."""
        if not self._buffer:
            try:
                if not controls:  # nothing to attach: the stdlib's one C call, as asyncio's transports make
                    if addr is None:
                        self._sock.send(data)
                    else:
                        self._sock.sendto(data, addr)
                else:
                    prepared = _prepare(self._sock, self._family, data, addr, controls)
                    IMPL.sender.send_encoded(self._sock, [prepared[0]], prepared[2], prepared[1], 0)
            except (BlockingIOError, InterruptedError):
                pass
            except OSError as exc:
                if pinned and controls and exc.errno == errno.EOPNOTSUPP:  # Wine drops controls: stop pinning
                    self._sources = None
                    self._transmit(data, addr, _NO_CONTROLS)
                    return
                if pieces > 1 and exc.errno in _GSO_REFUSED:  # this route cannot segment: send them one by one
                    self._gso = None
                    size = next(c.value for c in controls if type(c) is SegmentSize)
                    plain = tuple(c for c in controls if type(c) is not SegmentSize)
                    for start in range(0, len(data), size):
                        self._transmit(data[start : start + size], addr, plain)
                    return
                self._protocol.error_received(exc)  # type: ignore[attr-defined]
                return
            else:
                return
        prepared = _prepare(self._sock, self._family, bytes(data), addr, controls)  # a copy: data may change
        self._buffer.append((*prepared, len(data)))
        self._buffer_size += len(data)
        self._write_soon()
        self._maybe_pause_protocol()

    def _flush_gso(self) -> None:
        """Send what this loop iteration's sendto() calls queued, a GSO send per run.

        A run: equal-sized datagrams to one peer with the same controls (its last may be shorter).
        """
        pending, self._gso = self._gso, ([] if self._gso is not None else None)
        if not pending or self._lost:
            return
        for data, addr, controls, count, size in _gso_runs(pending):
            self._buffer_size -= len(data)
            if count == 1:
                self._transmit(data, addr, controls)
            else:
                self._transmit(data, addr, (*controls, SegmentSize(size)), pieces=count)
        self._maybe_resume_protocol()

    def _write_soon(self) -> None:
        if self._writing or self._lost:
            return
        self._writing = True
        if is_proactor(self._loop):
            self._loop.create_task(self._flush_overlapped())
        else:
            self._loop.add_writer(self._sock.fileno(), self._write_ready)

    def _write_ready(self) -> None:
        while self._buffer:
            cdata, name, control, size = self._buffer[0]
            try:
                IMPL.sender.send_encoded(self._sock, [cdata], control, name, 0)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self._protocol.error_received(exc)  # type: ignore[attr-defined]
            self._buffer.popleft()
            self._buffer_size -= size
        self._loop.remove_writer(self._sock.fileno())
        self._written()

    async def _flush_overlapped(self) -> None:
        while self._buffer and not self._lost:
            cdata, name, control, size = self._buffer[0]
            try:
                await send_overlapped(self._loop, self._sock, cdata, name, control)
            except OSError as exc:
                self._protocol.error_received(exc)  # type: ignore[attr-defined]
            if self._buffer:
                self._buffer.popleft()
                self._buffer_size -= size
        self._written()

    def _written(self) -> None:
        self._writing = False
        self._maybe_resume_protocol()
        if self._closing and not self._buffer and not self._lost:
            self._lose(None)

    def _maybe_pause_protocol(self) -> None:
        if not self._protocol_paused and self._buffer_size > self._high:
            self._protocol_paused = True
            self._protocol_call("pause_writing")

    def _maybe_resume_protocol(self) -> None:
        if self._protocol_paused and self._buffer_size <= self._low:
            self._protocol_paused = False
            self._protocol_call("resume_writing")

    def _protocol_call(self, name: str) -> None:
        try:
            getattr(self._protocol, name)()
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:  # noqa: BLE001 - asyncio reports these to the loop, too
            self._loop.call_exception_handler(
                {"message": f"protocol.{name}() failed", "exception": exc, "transport": self}
            )

    def get_write_buffer_size(self) -> int:
        """Bytes waiting to be sent."""
        return self._buffer_size

    def get_write_buffer_limits(self) -> tuple[int, int]:
        """(low, high) water marks, as asyncio's transports report them."""
        return self._low, self._high

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        """pause_writing() above high, resume_writing() at or below low (asyncio's rules and defaults)."""
        if high is None:
            high = _HIGH_WATER if low is None else 4 * low
        if low is None:
            low = high // 4
        if not high >= low >= 0:
            msg = f"high ({high!r}) must be >= low ({low!r}) must be >= 0"
            raise ValueError(msg)
        self._high, self._low = high, low
        self._maybe_pause_protocol()

    # -- lifetime ---------------------------------------------------------------------------

    def is_closing(self) -> bool:
        """True once close() or abort() was called, or the socket is gone."""
        return self._closing or self._lost

    def close(self) -> None:
        """Stop reading; send what is buffered, then connection_lost(None) and close the socket."""
        if self._closing or self._lost:
            return
        self._flush_gso()
        self._closing = True
        self._engine.stop()
        if not self._buffer:
            self._lose(None)

    def abort(self) -> None:
        """Close at once, dropping what is buffered."""
        self._force_close(None)

    def _force_close(self, exc: OSError | None) -> None:
        if self._lost:
            return
        self._closing = True
        self._engine.stop()
        if self._gso:
            self._gso.clear()
            self._buffer_size = sum(item[3] for item in self._buffer)
        if self._buffer:
            self._buffer.clear()
            self._buffer_size = 0
            if self._writing and not is_proactor(self._loop):
                self._loop.remove_writer(self._sock.fileno())
        self._lose(exc)

    def _lose(self, exc: OSError | None) -> None:
        self._lost = True
        self._loop.call_soon(self._call_connection_lost, exc)

    def _call_connection_lost(self, exc: OSError | None) -> None:
        try:
            self._protocol.connection_lost(exc)
        finally:
            self._sock.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """'socket' (asyncio's TransportSocket), 'sockname', 'peername', as asyncio's transports give them."""
        if name == "sockname":
            try:
                return self._sock.getsockname()
            except OSError:
                return default
        if name == "peername":
            return default if self._peer is None else self._peer
        return super().get_extra_info(name, default)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._protocol

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._protocol = protocol
        self._dispatch = self._dispatcher(protocol)


def _reply_controls(source: tuple[tuple[Control, ...], MsgFlag] | None) -> tuple[Control, ...]:
    """The controls that answer from where a peer's last datagram arrived (see Message.reply_controls())."""
    if source is None:
        return _NO_CONTROLS
    controls, flags = source
    return tuple(Message(b"", None, flags, controls).reply_controls())


def _is_wildcard(sock: socket.socket) -> bool:
    try:
        host = sock.getsockname()[0]
    except (OSError, IndexError):
        return False
    try:
        return bool(ipaddress.ip_address(host.split("%", 1)[0]).is_unspecified)
    except ValueError:
        return False


async def create_datagram_endpoint(
    protocol_factory: Callable[[], asyncio.BaseProtocol],
    local_addr: Any = None,
    remote_addr: Any = None,
    *,
    family: int = 0,
    proto: int = 0,
    flags: int = 0,
    reuse_port: bool | None = None,
    allow_broadcast: bool | None = None,
    sock: Any = None,
    features: Iterable[Feature] = (Feature.PACKET_INFO,),
    reply_from_destination: bool | None = None,
    bufsize: int | None = None,
    depth: int = 4,
    gso: bool = False,
) -> tuple[DatagramTransport, asyncio.BaseProtocol]:
    """loop.create_datagram_endpoint(), with portmsg underneath: (transport, protocol).

    The arguments up to `sock` are asyncio's.  Then:

    Args:
        protocol_factory: makes the protocol (asyncio's callbacks, plus
            message_received / messages_received for Messages).
        local_addr: (host, port) to bind, as asyncio takes it.
        remote_addr: (host, port) to connect to, as asyncio takes it.
        family: AF_INET or AF_INET6 to pick when resolving (0: any).
        proto: the protocol number to resolve with.
        flags: getaddrinfo flags to resolve with.
        reuse_port: set SO_REUSEPORT before binding.
        allow_broadcast: set SO_BROADCAST.
        sock: an existing datagram socket instead (the transport owns it from now on).
        features: what to enable() on the socket (PACKET_INFO by default).
        reply_from_destination: make sendto(data, peer) answer from the address
            that peer last sent to.  None: on when PACKET_INFO is on and the
            socket is bound to a wildcard address (0.0.0.0, ::) and not
            connected, which is what a multi-homed server needs.
        bufsize: bytes per datagram read (None: as recv_batch() sizes it).
        depth: overlapped receives kept posted on the ProactorEventLoop.
        gso: hold the datagrams sendto() / sendmsg() queue in one loop iteration
            and send each run of equal-sized ones to one peer as a single UDP
            GSO send (Linux UDP_SEGMENT): fewer system calls for a sender of
            bursts (QUIC), at the cost of a loop iteration's delay.  Off by
            default; a route that cannot segment turns it off and sends the
            datagrams one by one.  ValueError where the OS has no UDP_SEGMENT.

    Platforms:
        Under Wine, which drops controls on send, replies go out without
        source selection (the first refusal turns pinning off).

    """
    loop = asyncio.get_running_loop()
    if gso and "UDP_SEGMENT" not in IMPL.constants:
        msg = f"gso=True needs UDP segmentation offload (Linux's UDP_SEGMENT), which {IMPL.platform} has not"
        raise ValueError(msg)
    if sock is not None:
        if local_addr is not None or remote_addr is not None:
            msg = "socket modifier keyword arguments can not be used when sock is specified"
            raise ValueError(msg)
        inner = nonblocking(sock) if sock.gettimeout() == 0 else sock
        if inner.type != socket.SOCK_DGRAM:
            msg = f"A datagram socket was expected, got {inner!r}"
            raise ValueError(msg)
        if gso and inner.family not in (socket.AF_INET, socket.AF_INET6):
            msg = f"gso=True needs a UDP socket, not {inner!r}"
            raise ValueError(msg)
        inner.setblocking(False)  # noqa: FBT003
        peer = None
        with contextlib.suppress(OSError):  # not connected
            peer = inner.getpeername()
    else:
        inner, peer = await _open_socket(
            loop, local_addr, remote_addr, family, proto, flags, reuse_port, allow_broadcast
        )
    try:
        on = enable(inner, *features)
        if reply_from_destination is None:
            reply_from_destination = Feature.PACKET_INFO in on and peer is None and _is_wildcard(inner)
        if bufsize is None:
            from ._api import _coalesces  # noqa: PLC0415

            bufsize = 65535 if _coalesces(inner) else 2048
        protocol = protocol_factory()
        transport = DatagramTransport(
            loop,
            inner,
            protocol,
            peer=peer,
            bufsize=bufsize,
            depth=depth,
            reply_from_destination=reply_from_destination,
            gso=gso,
        )
    except BaseException:
        inner.close()
        raise
    await asyncio.sleep(0)  # connection_made runs before this returns, as with asyncio's own
    return transport, protocol


async def _open_socket(
    loop: asyncio.AbstractEventLoop,
    local_addr: Any,
    remote_addr: Any,
    family: int,
    proto: int,
    flags: int,
    reuse_port: bool | None,  # noqa: FBT001 - asyncio's arguments, passed on
    allow_broadcast: bool | None,  # noqa: FBT001
) -> tuple[socket.socket, Any]:
    """A non-blocking datagram socket bound and connected as asked, as loop.create_datagram_endpoint() makes it."""
    local = remote = None
    if local_addr is not None:
        local = (await loop.getaddrinfo(*local_addr, family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags))[
            0
        ]
        family = local[0]
    if remote_addr is not None:
        remote = (
            await loop.getaddrinfo(*remote_addr, family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags)
        )[0]
        family = remote[0]
    if local is None and remote is None:
        msg = "unexpected address family" if not family else "local_addr, remote_addr or sock is needed"
        raise ValueError(msg)
    sock = socket.socket(family, socket.SOCK_DGRAM, proto)
    try:
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # type: ignore[attr-defined,unused-ignore]
        if allow_broadcast:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        sock.setblocking(False)  # noqa: FBT003
        if local is not None:
            sock.bind(local[4])
        peer = None
        if remote is not None:
            await loop.sock_connect(sock, remote[4])
            peer = remote[4]
    except BaseException:
        sock.close()
        raise
    return sock, peer
