"""The per-OS contract: everything that differs between the two compiled backends, in one block.

`_posix.py` and `_winsock.py` each fill one `OsHooks`; the shared glue
(`_glue.py`, `_wait.py`, `_send.py`) reads nothing else OS-specific but the
compiled constants, and `sys.platform` once (`_wait.ready`: Windows waits
with select(), POSIX with poll()).  Fast-path switches are derived from
these fields, never kept by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import socket
    from collections.abc import Callable

__all__ = ["OsHooks"]


@dataclass(frozen=True)
class OsHooks:
    """What a compiled backend declares about its OS."""

    name: str
    """"posix" or "winsock"."""
    platform: str
    """Where this runs: sys.platform on POSIX; "windows 10.0.BUILD" or "wine 8.0" on Windows."""
    error: Callable[[int], OSError]
    """An OS error code -> the exception the stdlib raises for it."""
    would_block: frozenset[int]
    """Codes meaning "nothing to do yet" (EAGAIN / WSAEWOULDBLOCK)."""
    eintr: int | None
    """The code of a call interrupted by a signal; None where calls are not interrupted."""
    closed: int
    """The code a call on a closed socket gives (EBADF / WSAENOTSOCK)."""
    dontwait: int = 0
    """An input flag that makes one receive non-blocking (MSG_DONTWAIT), or 0.  Where set,
    blocking receives wait in Python in slices, so that a close from another thread ends them."""
    recv_flags: int | None = None
    """The input flags a receive accepts (None: any)."""
    functions: Callable[[socket.socket, int], tuple[Any, Any]] | None = None
    """(sock, fd) -> the provider's (receive, send) function pointers; None: the C side needs none."""
    send_controls_refused: str | None = None
    """Why control messages cannot be sent here (Wine drops them), or None."""
    disable_udp_resets: Callable[[int], frozenset[str]] | None = None
    """fd -> the ICMP-reset options turned off; None where there are none (POSIX)."""
    timestamping: Callable[[int], int] | None = None
    """fd -> 0 once receive timestamps are on (Windows' SIO_TIMESTAMPING ioctl), else the
    error code; None where a socket option does it (POSIX)."""
    perf_frequency: int | None = None
    """Ticks per second of the clock receive timestamps count in, where they count ticks
    (Windows: QueryPerformanceFrequency); None where they carry time itself."""

    @property
    def plain(self) -> bool:
        """No input-flag check and no per-socket function pointer: the receive fast path skips both."""
        return self.recv_flags is None and self.functions is None
