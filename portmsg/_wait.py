"""Waiting and retrying after a call that did not complete: EINTR, the socket's timeout, blocking waits.

The policy is the stdlib's: a non-blocking socket raises BlockingIOError, a
timeout socket waits and raises TimeoutError("timed out"), EINTR is retried
(PEP 475).  One difference in mechanism: where the OS has MSG_DONTWAIT,
receives on a blocking socket never block in the kernel but wait here.
Every wait here runs in slices, so that a close from another thread ends it
(a recvmsg blocked in the kernel, or a poll, would go on), and the
descriptor is read again after every slice, so a number reused by another
socket is never read from.
"""

from __future__ import annotations

import math
import select
import socket
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import struct
    from collections.abc import Callable

    from ._hooks import OsHooks

__all__ = ["CLOSE_CHECK", "ERROR_ONLY", "READY", "Waiter", "ready"]

CLOSE_CHECK = 0.25
"""Seconds a blocking receive waits between checks that its socket is still open."""


READY, ERROR_ONLY = 1, 2
"""What ready() saw: the descriptor is readable (writable), or it reports only an error (POLLERR)."""


def ready(fd: int, timeout: float, *, write: bool) -> int:
    """Wait until fd is readable (or writable) or reports an error, or timeout seconds pass (0)."""
    if sys.platform == "win32":
        ready_lists = select.select([], [fd], [fd], timeout) if write else select.select([fd], [], [fd], timeout)
        return READY if any(ready_lists) else 0
    wanted = select.POLLOUT if write else select.POLLIN
    poller = select.poll()
    poller.register(fd, wanted | select.POLLERR | select.POLLHUP)
    events = poller.poll(max(0, math.ceil(timeout * 1000)))
    if not events:
        return 0
    return READY if events[0][1] & (wanted | select.POLLHUP) else ERROR_ONLY


class Waiter:
    """Decides, after a failed call, whether to retry, wait, or raise as the stdlib does.

    Args:
        hooks: the OS's error codes and exception mapping.
        timeval: the layout of SO_RCVTIMEO's struct timeval (seconds, microseconds),
            read where receives wait in slices, so a hand-set receive timeout is
            honoured there too; None where the kernel does the waiting.

    """

    def __init__(
        self,
        hooks: OsHooks,
        timeval: struct.Struct | None,
        queued_error: Callable[[socket.socket], OSError | None] | None = None,
    ) -> None:
        self._hooks = hooks
        self._timeval = timeval
        self._queued_error = queued_error

    def recover(
        self, sock: socket.socket, code: int, deadline: float | None, *, write: bool, sliced: bool
    ) -> tuple[int, float | None]:
        """Return the descriptor to retry on and the deadline, or raise.

        Args:
            sock: the socket the call was made on.
            code: the OS error code the call failed with.
            deadline: time.monotonic() at which a timeout socket gives up (None at first).
            write: the call was a send.
            sliced: the call was made non-blocking by us (MSG_DONTWAIT), not by the
                caller: a blocking socket then waits here.

        """
        hooks = self._hooks
        if code == hooks.eintr:
            return self._fd_after_wait(sock), deadline  # PEP 475: signal handlers run as we return
        if code not in hooks.would_block:
            # An ICMP error the kernel also queued (ERRORS on): raise that report, so it is raised once.
            queued = self._queued_error(sock) if self._queued_error and not write and code != hooks.closed else None
            raise queued if queued is not None else hooks.error(code)
        timeout = sock.gettimeout()
        if timeout is None and sliced:
            limit = self._rcvtimeo(sock)  # a blocking socket: the kernel would honour SO_RCVTIMEO
            expired: OSError = hooks.error(code)  # ... and then fail with EAGAIN
        elif timeout:
            limit, expired = timeout, TimeoutError("timed out")
        else:
            raise hooks.error(code)  # non-blocking: it would block, as the stdlib says
        if deadline is None and limit is not None:
            deadline = time.monotonic() + limit
        # Wait in slices: between them, a socket closed by another thread is noticed.
        while True:
            fd = self._fd_after_wait(sock)
            step = CLOSE_CHECK if deadline is None else min(CLOSE_CHECK, deadline - time.monotonic())
            if step <= 0:
                raise expired
            seen = ready(fd, step, write=write)
            if seen == ERROR_ONLY and not write and self._queued_error is not None:
                # A queued error keeps POLLERR up until it is read: raise it once instead of polling on.
                queued = self._queued_error(sock)
                if queued is not None:
                    raise queued
            if seen:
                return self._fd_after_wait(sock), deadline

    def _rcvtimeo(self, sock: socket.socket) -> float | None:
        """The socket's SO_RCVTIMEO in seconds, None when unset (0) or unknown."""
        if self._timeval is None:
            return None
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, self._timeval.size)
        except OSError:
            return None
        seconds, micros = self._timeval.unpack(raw)
        limit: float = seconds + micros / 1e6
        return limit or None

    def _fd_after_wait(self, sock: socket.socket) -> int:
        """The socket's descriptor now: another thread may have closed it while we waited."""
        fd = sock.fileno()
        if fd < 0:
            raise self._hooks.error(self._hooks.closed)
        return fd
