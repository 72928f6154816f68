"""Windows glue over portmsg._winsock_cffi: WSARecvMsg/WSASendMsg, WSAGetLastError.

The extension-function pointers belong to the socket's provider, not to the
process (quinn-udp learned this from a layered provider, quinn PR #2825):
they are looked up with WSAIoctl on the socket itself and cached under the
provider's catalog entry id, and per socket object so the common path costs
one dict lookup.
"""

from __future__ import annotations

import sys
import weakref
from typing import TYPE_CHECKING, Any

from ._glue import CffiBackend
from ._winsock_cffi import ffi, lib

if TYPE_CHECKING:
    import socket

__all__ = ["BACKEND", "WinsockBackend"]

_RECV, _SEND = 0, 1


class WinsockBackend(CffiBackend):
    """WSARecvMsg / WSASendMsg with the control walk done in the same C call."""

    name = "winsock"
    EINTR = None  # Winsock calls are not interrupted by signals

    def __init__(self, ffi: Any, lib: Any) -> None:
        super().__init__(ffi, lib)
        c = self.constants
        self._wouldblock = c["WSAEWOULDBLOCK"]
        # Only MSG_PEEK is valid input for WSARecvMsg; Wine accepts anything,
        # so portmsg checks, to behave the same on both.
        self._allowed_recv_flags = c["MSG_PEEK"]
        self._providers = self.provider_functions
        self._plain = False
        self._by_provider: dict[int, tuple[Any, Any]] = {}
        self._by_socket: weakref.WeakKeyDictionary[socket.socket, tuple[int, tuple[Any, Any]]] = (
            weakref.WeakKeyDictionary()
        )
        wine = lib.pm_wine_version()
        if wine != ffi.NULL:
            self.platform = f"wine {ffi.string(wine).decode()}"
            # Wine 8 accepts control messages on WSASendMsg and drops them:
            # refuse rather than let a datagram leave without them.
            self._send_controls_refused = f"{self.platform} ignores control messages passed to WSASendMsg"
        else:
            self.platform = f"windows {sys.getwindowsversion().major}.{sys.getwindowsversion().build}"  # type: ignore[attr-defined,unused-ignore]

    # -- errors ------------------------------------------------------------------

    def _error(self, code: int) -> OSError:
        """OSError(winerror=code): Python derives errno and the subclass from it, as the stdlib does."""
        text = self.ffi.new("wchar_t[]", 512)
        n = self.lib.pm_error_text(code, text, 512)
        message = self.ffi.string(text, n) if n > 0 else f"Windows Error {code:#x}"  # CPython's fallback text
        return OSError(0, message, None, code)

    def _would_block(self, code: int) -> bool:
        return code == self._wouldblock

    def _ebadf(self) -> int:
        return self.constants["WSAENOTSOCK"]

    # -- extension functions -----------------------------------------------------------

    def provider_functions(self, sock: socket.socket, fd: int) -> tuple[Any, Any]:
        """(WSARecvMsg, WSASendMsg) for this socket's provider."""
        cached = self._by_socket.get(sock)
        if cached is not None and cached[0] == fd:
            return cached[1]
        error = self.ffi.new("int *")
        catalog = self.ffi.new("unsigned long *")
        if self.lib.pm_provider_id(fd, catalog, error) != 0:
            raise self._error(int(error[0]))
        functions = self._by_provider.get(int(catalog[0]))
        if functions is None:
            found = []
            for which, name in ((_RECV, "WSARecvMsg"), (_SEND, "WSASendMsg")):
                fn = self.lib.pm_extension(fd, which, error)
                if fn == self.ffi.NULL:
                    code = int(error[0])
                    exc = self._error(code)
                    exc.strerror = f"this socket's provider has no {name}: {exc.strerror}"
                    raise exc
                found.append(fn)
            functions = (found[0], found[1])
            self._by_provider[int(catalog[0])] = functions
        self._by_socket[sock] = (fd, functions)
        return functions

    def disable_udp_resets(self, sock: socket.socket) -> frozenset[str]:
        """Turn off WSAECONNRESET / WSAENETRESET after ICMP errors; return which were turned off."""
        fd = self._fd(sock)
        done = set()
        error = ffi.new("int *")
        for name in ("SIO_UDP_CONNRESET", "SIO_UDP_NETRESET"):
            if name in self.constants and lib.pm_ioctl_bool(fd, self.constants[name] & 0xFFFFFFFF, 0, error) == 0:
                done.add(name)
        return frozenset(done)


BACKEND = WinsockBackend(ffi, lib)
