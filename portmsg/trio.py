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

from . import _io

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterable

    from ._types import Control, Message

__all__ = ["recv", "recv_batch", "send"]


async def _readiness(sock: socket.socket, call: Callable[[], Any], *, write: bool = False) -> Any:
    """Try the non-blocking call, and wait only when it would block (trio.socket's own pattern)."""
    await trio.lowlevel.checkpoint_if_cancelled()
    try:
        result = call()
    except BlockingIOError:
        pass
    else:
        await trio.lowlevel.cancel_shielded_checkpoint()
        return result
    wait = trio.lowlevel.wait_writable if write else trio.lowlevel.wait_readable
    while True:
        await wait(sock)
        try:
            return call()
        except BlockingIOError:
            # Another task took it, or an error Linux queued (ERRORS on) woke us: raise that once.
            error = None if write else _io.queued_error(sock)
            if error is not None:
                raise error from None


async def recv(sock: Any, bufsize: int = 65535, *, ancbufsize: int | None = None) -> Message:
    """One datagram, as portmsg.recv() gives it; waits without blocking trio."""
    inner = _io.async_socket(sock, "portmsg.trio.recv")
    bufsize, ancbufsize = _io.sizes(inner, bufsize, ancbufsize)
    batch: list[Message] = await _readiness(inner, lambda: _io.receive_batch(inner, 1, bufsize, ancbufsize))
    return batch[0]


async def recv_batch(
    sock: Any, max_messages: int = 32, bufsize: int | None = None, *, ancbufsize: int | None = None
) -> list[Message]:
    """Wait for one datagram, then take what else is queued (max_messages at most, 1-1024).

    bufsize=None reads 65535 bytes per datagram (every UDP datagram whole);
    ancbufsize=None leaves room for every control.
    """
    inner = _io.async_socket(sock, "portmsg.trio.recv_batch")
    bufsize, ancbufsize = _io.sizes(inner, bufsize, ancbufsize)
    count = _io.batch_size(max_messages)
    result: list[Message] = await _readiness(inner, lambda: _io.receive_batch(inner, count, bufsize, ancbufsize))
    return result


async def send(sock: Any, data: Any, address: Any = None, *, controls: Iterable[Control] = ()) -> int:
    """Send one datagram as portmsg.send() does, waiting for room instead of raising BlockingIOError.

    As with trio's own sockets, one task at a time may wait to send on a
    socket: a second raises trio.BusyResourceError.
    """
    inner = _io.async_socket(sock, "portmsg.trio.send")
    out = _io.prepare(inner, address, controls)
    sent: int = await _readiness(inner, lambda: _io.try_send(inner, data, out), write=True)
    return sent


def __dir__() -> list[str]:
    return sorted(__all__)
