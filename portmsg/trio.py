"""trio: receive and send datagrams with their metadata, by readiness, on every OS.

    msg = await portmsg.trio.recv(sock)                  # a portmsg.Message
    batch = await portmsg.trio.recv_batch(sock, 32)
    await portmsg.trio.send(sock, b"answer", msg.address, controls=msg.reply_controls())

`sock` is a trio socket or a non-blocking socket.socket.  Each call tries the
non-blocking call first and waits with `trio.lowlevel.wait_readable` /
`wait_writable` (epoll, kqueue, or AFD polling on Windows) only when it would
block, as trio.socket does: a cancellation lands only while waiting, before
anything was taken from the socket.  Every call is a checkpoint.
`trio.lowlevel.notify_closing(sock)` ends a waiting call with
`trio.ClosedResourceError`.  Importing this module needs trio installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from . import _args
from ._api import _prepare
from ._api import recv as _recv
from ._api import recv_batch as _recv_batch
from ._backend import IMPL

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterable

    from ._types import Control, Message

__all__ = ["recv", "recv_batch", "send"]


def _nonblocking(sock: Any) -> socket.socket:
    inner = _args.sock_of(sock)  # trio's socket objects keep the stdlib one as _sock
    if inner.gettimeout() != 0:
        msg = "portmsg.trio needs a non-blocking socket: call sock.setblocking(False), or use a trio socket"
        raise ValueError(msg)
    return inner


async def _readiness(sock: socket.socket, call: Callable[[], Any], wait: Callable[[Any], Any]) -> Any:
    """Try the non-blocking call, and wait only when it would block (trio.socket's own pattern)."""
    await trio.lowlevel.checkpoint_if_cancelled()
    try:
        result = call()
    except BlockingIOError:
        pass
    else:
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result
    while True:
        await wait(sock)
        try:
            return call()
        except BlockingIOError:
            pass  # a spurious wakeup: another task took it


async def recv(sock: Any, bufsize: int = 65535, *, ancbufsize: int | None = None) -> Message:
    """One datagram, as portmsg.recv() gives it; waits without blocking trio."""
    inner = _nonblocking(sock)
    result: Message = await _readiness(
        inner, lambda: _recv(inner, bufsize, ancbufsize=ancbufsize), trio.lowlevel.wait_readable
    )
    return result


async def recv_batch(sock: Any, max_messages: int = 32, bufsize: int | None = None) -> list[Message]:
    """Wait for one datagram, then take what else is queued, as portmsg.recv_batch() does."""
    inner = _nonblocking(sock)
    result: list[Message] = await _readiness(
        inner, lambda: _recv_batch(inner, max_messages, bufsize), trio.lowlevel.wait_readable
    )
    return result


async def send(sock: Any, data: Any, address: Any = None, *, controls: Iterable[Control] = ()) -> int:
    """Send one datagram as portmsg.send() does, waiting for room instead of raising BlockingIOError."""
    inner = _nonblocking(sock)
    cdata, name, control = _prepare(inner, inner.family, data, address, controls)
    sent: int = await _readiness(
        inner, lambda: IMPL.sender.send_encoded(inner, [cdata], control, name, 0), trio.lowlevel.wait_writable
    )
    return sent
