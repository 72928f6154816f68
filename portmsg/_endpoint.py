"""create_datagram_endpoint(): asyncio's socket rules, then portmsg's transport over the socket."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import _io
from ._enable import enable
from ._engines import engine_for
from ._transport import DatagramTransport
from ._types import Feature

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["create_datagram_endpoint"]

_P = TypeVar("_P", bound=asyncio.BaseProtocol)


async def create_datagram_endpoint(
    protocol_factory: Callable[[], _P],
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
    ancbufsize: int | None = None,
    depth: int = 4,
    gso: bool = False,
    batch_replies: bool = True,
) -> tuple[DatagramTransport, _P]:
    """loop.create_datagram_endpoint(), with portmsg underneath: (transport, protocol).

    The arguments up to `sock` are asyncio's, checked and used as asyncio
    does (an AF_UNIX path, a family alone for an unbound socket, remote_addr
    with allow_broadcast left unconnected).  Then:

    Args:
        protocol_factory: makes the protocol (asyncio's callbacks, plus
            message_received / messages_received for Messages).
        local_addr: (host, port) to bind, or an AF_UNIX path.
        remote_addr: (host, port) to connect to, or an AF_UNIX path.
        family: AF_INET, AF_INET6 or AF_UNIX (0: any the addresses resolve to).
        proto: the protocol number.
        flags: getaddrinfo flags to resolve with.
        reuse_port: set SO_REUSEPORT before binding (ValueError where there is none).
        allow_broadcast: set SO_BROADCAST (and send to remote_addr without connecting).
        sock: an existing datagram socket instead (the transport owns it from now on).
        features: what to enable() on the socket (PACKET_INFO by default).
        reply_from_destination: make sendto(data, peer) answer from the address
            that peer's datagram was sent to.  None: on when PACKET_INFO is on and
            the socket is bound to a wildcard address (0.0.0.0, ::) and not
            connected, which is what a multi-homed server needs.
        bufsize: bytes read per datagram (None: 65535, every UDP datagram
            whole).  A plain datagram_received() never gets a cut datagram: one
            longer than bufsize is reported to error_received as OSError(EMSGSIZE).
        ancbufsize: control bytes per datagram (None: room for every control).
        depth: overlapped receives kept posted on the ProactorEventLoop.
        gso: hold the datagrams sendto() / sendmsg() queue in one loop iteration
            and send each run of equal-sized ones to one peer as a single UDP
            GSO send (Linux UDP_SEGMENT): fewer system calls for a sender of
            bursts (QUIC), at the cost of a loop iteration's delay.  Off by
            default; a route that cannot segment turns it off and sends the
            datagrams one by one.  ValueError where the OS has no UDP_SEGMENT.
        batch_replies: the datagrams the protocol sends from inside one batch's
            callbacks go out together once they return, in one call (sendmmsg on
            Linux; a loop elsewhere), in order.  A lone request's reply waits for
            nothing but its own callback; sends made outside a callback go at once.

    Platforms:
        Under Wine, which drops controls on send, replies go out without
        source selection (get_extra_info("portmsg.why_not_pinned") says so).

    """
    loop = asyncio.get_running_loop()
    if gso and not _io.GSO:
        msg = f"gso=True needs UDP segmentation offload (Linux's UDP_SEGMENT), which {_io.PLATFORM} has not"
        raise ValueError(msg)
    if sock is not None:
        inner = _given_socket(sock, local_addr, remote_addr, family, proto, flags, reuse_port, allow_broadcast)
        engine_for(loop, inner).check_free()  # refused before anything is done to the caller's socket
        address = None
    else:
        inner, address = await _open_socket(
            loop, local_addr, remote_addr, family, proto, flags, reuse_port, allow_broadcast
        )
    try:
        sizes = _checked(inner, bufsize, ancbufsize, depth, gso=gso)
        on = enable(inner, *features)
        connected = _peer(inner) is not None
        why_not = None
        if reply_from_destination is None:
            reply_from_destination = Feature.PACKET_INFO in on and not connected and _is_wildcard(inner)
        if reply_from_destination and _io.SEND_CONTROLS_REFUSED:
            reply_from_destination, why_not = False, f"replies cannot be pinned: {_io.SEND_CONTROLS_REFUSED}"
        protocol = protocol_factory()
        transport = DatagramTransport(
            loop,
            inner,
            protocol,
            address=address,
            enabled=on,
            reply_from_destination=reply_from_destination,
            why_not_pinned=why_not,
            gso=gso,
            batch_replies=batch_replies,
        )
        # Read from now on: the protocol's connection_made() was scheduled first, so it runs first.
        transport._engine.open_reading(transport, sizes[0], sizes[1], depth)  # noqa: SLF001 - the transport's own engine
    except BaseException:
        inner.close()
        raise
    made: asyncio.Future[None] = loop.create_future()
    loop.call_soon(_set_once, made)
    try:
        await made  # connection_made runs before this returns, as with asyncio's own
    except BaseException:
        transport.close()
        raise
    return transport, protocol


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _checked(
    inner: socket.socket, bufsize: int | None, ancbufsize: int | None, depth: int, *, gso: bool
) -> tuple[int, int]:
    """The arguments portmsg adds, checked before anything runs on the loop: (bufsize, ancbufsize)."""
    if gso and inner.family not in (socket.AF_INET, socket.AF_INET6):
        msg = f"gso=True needs a UDP socket, not {inner!r}"
        raise ValueError(msg)
    if depth < 1:
        msg = f"depth must be 1 or more, not {depth}"
        raise ValueError(msg)
    return _io.sizes(inner, bufsize, ancbufsize)


def _given_socket(
    sock: Any,
    local_addr: Any,
    remote_addr: Any,
    family: int,
    proto: int,
    flags: int,
    reuse_port: bool | None,  # noqa: FBT001 - asyncio's arguments, passed on
    allow_broadcast: bool | None,  # noqa: FBT001
) -> socket.socket:
    """sock=: checked as asyncio checks it, made non-blocking."""
    inner = _io.socket_of(sock)
    if inner.type != socket.SOCK_DGRAM:
        msg = f"A datagram socket was expected, got {inner!r}"
        raise ValueError(msg)
    given = {
        "local_addr": local_addr,
        "remote_addr": remote_addr,
        "family": family,
        "proto": proto,
        "flags": flags,
        "reuse_port": reuse_port,
        "allow_broadcast": allow_broadcast,
    }
    problems = ", ".join(f"{name}={value}" for name, value in given.items() if value)
    if problems:
        msg = f"socket modifier keyword arguments can not be used when sock is specified. ({problems})"
        raise ValueError(msg)
    return _io.async_socket(inner, "portmsg.aio.create_datagram_endpoint", setblocking=True)


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
    """A non-blocking datagram socket bound and connected as loop.create_datagram_endpoint() makes it.

    Returns the socket and sendto()'s default destination (remote_addr's address, or None).
    """
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        msg = "reuse_port not supported by socket module"
        raise ValueError(msg)
    candidates = await _candidates(loop, local_addr, remote_addr, family, proto, flags)
    errors: list[OSError] = []
    for (af, protocol), (local, remote) in candidates:
        sock = socket.socket(af, socket.SOCK_DGRAM, protocol)
        try:
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # type: ignore[attr-defined,unused-ignore]
            if allow_broadcast:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.setblocking(False)  # noqa: FBT003
            if local_addr:
                sock.bind(local)
            if remote_addr and not allow_broadcast:  # a broadcast query hears answers from anyone
                await loop.sock_connect(sock, remote)
        except OSError as exc:
            sock.close()
            errors.append(exc)
            continue
        except BaseException:
            sock.close()
            raise
        return sock, remote if remote_addr else None
    raise errors[0]


async def _candidates(
    loop: asyncio.AbstractEventLoop, local_addr: Any, remote_addr: Any, family: int, proto: int, flags: int
) -> list[tuple[tuple[int, int], tuple[Any, Any]]]:
    """((family, proto), (local address, remote address)) to try in order, as asyncio lists them."""
    if not (local_addr or remote_addr):
        if family == 0:
            msg = "unexpected address family"
            raise ValueError(msg)
        return [((family, proto), (None, None))]
    if family == getattr(socket, "AF_UNIX", None):
        return [((family, proto), _unix_paths(local_addr, remote_addr))]
    found: dict[tuple[int, int], list[Any]] = {}
    for index, addr in ((0, local_addr), (1, remote_addr)):
        if addr is None:
            continue
        if not (isinstance(addr, tuple) and len(addr) == 2):  # noqa: PLR2004 - (host, port)
            msg = "2-tuple is expected"
            raise TypeError(msg)
        infos = _literal(addr, family, proto) or await loop.getaddrinfo(
            *addr, family=family, type=socket.SOCK_DGRAM, proto=proto, flags=flags
        )
        if not infos:
            msg = "getaddrinfo() returned empty list"
            raise OSError(msg)
        for af, _, protocol, _, address in infos:
            found.setdefault((af, protocol), [None, None])[index] = address
    pairs = [
        (key, (pair[0], pair[1]))
        for key, pair in found.items()
        if not ((local_addr and pair[0] is None) or (remote_addr and pair[1] is None))
    ]
    if not pairs:
        msg = "can not get address information"
        raise ValueError(msg)
    return pairs


def _literal(addr: tuple[Any, Any], family: int, proto: int) -> list[tuple[int, int, int, str, Any]]:
    """An IP literal needs no resolver (asyncio's own shortcut): its address as given, port unchecked.

    So a port above 65535 reaches bind(), which raises OverflowError, as with asyncio.
    """
    host, port = addr
    if not isinstance(host, str) or "%" in host or not isinstance(port, int) or proto not in (0, socket.IPPROTO_UDP):
        return []  # names, scoped addresses and the rest go to the resolver
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return []
    af = socket.AF_INET if ip.version == 4 else socket.AF_INET6  # noqa: PLR2004
    if family not in (0, af):
        return []
    address = (host, port) if af == socket.AF_INET else (host, port, 0, 0)
    return [(af, socket.SOCK_DGRAM, proto or socket.IPPROTO_UDP, "", address)]


def _unix_paths(local_addr: Any, remote_addr: Any) -> tuple[Any, Any]:
    """AF_UNIX paths, checked as asyncio checks them; a socket file an earlier server left is removed first."""
    for addr in (local_addr, remote_addr):
        if addr is not None and not isinstance(addr, str):
            msg = "string is expected"
            raise TypeError(msg)
    if local_addr and local_addr[0] not in (0, "\x00"):  # not an abstract name
        path = Path(local_addr)
        with contextlib.suppress(OSError):  # the bind that follows reports what matters
            if stat.S_ISSOCK(path.stat().st_mode):
                path.unlink()
    return local_addr, remote_addr


def _peer(sock: socket.socket) -> Any:
    try:
        return sock.getpeername()
    except OSError:
        return None


def _is_wildcard(sock: socket.socket) -> bool:
    try:
        host = sock.getsockname()[0]
    except (OSError, IndexError, TypeError):
        return False
    try:
        return bool(ipaddress.ip_address(str(host).split("%", 1)[0]).is_unspecified)
    except ValueError:
        return False
