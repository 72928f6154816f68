"""The Windows backend: WSARecvMsg / WSASendMsg over portmsg._winsock_cffi, WSAGetLastError -> OSError.

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

from ._glue import CffiBackend, read_constants
from ._hooks import OsHooks
from ._winsock_cffi import ffi, lib

if TYPE_CHECKING:
    import socket

__all__ = ["IMPL", "ProviderFunctions"]

_RECV, _SEND = 0, 1


def _error(code: int) -> OSError:
    """OSError(winerror=code): Python derives errno and the subclass from it, as the stdlib does."""
    text = ffi.new("wchar_t[]", 512)
    n = lib.pm_error_text(code, text, 512)
    message = ffi.string(text, n) if n > 0 else f"Windows Error {code:#x}"  # CPython's fallback text
    return OSError(0, message, None, code)


class ProviderFunctions:
    """(WSARecvMsg, WSASendMsg) per socket, cached per provider and per socket object."""

    def __init__(self) -> None:
        self.by_provider: dict[int, tuple[Any, Any]] = {}
        self._by_socket: weakref.WeakKeyDictionary[socket.socket, tuple[int, tuple[Any, Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def __call__(self, sock: socket.socket, fd: int) -> tuple[Any, Any]:
        """(WSARecvMsg, WSASendMsg) for this socket's provider."""
        cached = self._by_socket.get(sock)
        if cached is not None and cached[0] == fd:
            return cached[1]
        error = ffi.new("int *")
        catalog = ffi.new("unsigned long *")
        if lib.pm_provider_id(fd, catalog, error) != 0:
            raise _error(int(error[0]))
        functions = self.by_provider.get(int(catalog[0]))
        if functions is None:
            found = []
            for which, name in ((_RECV, "WSARecvMsg"), (_SEND, "WSASendMsg")):
                fn = lib.pm_extension(fd, which, error)
                if fn == ffi.NULL:
                    exc = _error(int(error[0]))
                    exc.strerror = f"this socket's provider has no {name}: {exc.strerror}"
                    raise exc
                found.append(fn)
            functions = (found[0], found[1])
            self.by_provider[int(catalog[0])] = functions
        self._by_socket[sock] = (fd, functions)
        return functions


def _disable_udp_resets(fd: int) -> frozenset[str]:
    """Turn off WSAECONNRESET / WSAENETRESET after ICMP errors; return which were turned off."""
    done = set()
    error = ffi.new("int *")
    for name in ("SIO_UDP_CONNRESET", "SIO_UDP_NETRESET"):
        if name in _CONSTANTS and lib.pm_ioctl_bool(fd, _CONSTANTS[name] & 0xFFFFFFFF, 0, error) == 0:
            done.add(name)
    return frozenset(done)


def _timestamping(fd: int) -> int:
    """Receive timestamps on (SIO_TIMESTAMPING, TIMESTAMPING_FLAG_RX): 0, or the WSA error."""
    error = ffi.new("int *")
    flags = _CONSTANTS.get("TIMESTAMPING_FLAG_RX", 1)
    return 0 if lib.pm_timestamping(fd, flags, error) == 0 else int(error[0])


def _platform() -> tuple[str, str | None]:
    """("wine VERSION", why sends drop controls) under Wine, ("windows MAJOR.BUILD", None) on Windows."""
    wine = lib.pm_wine_version()
    if wine != ffi.NULL:
        where = f"wine {ffi.string(wine).decode()}"
        # Wine 8 accepts control messages on WSASendMsg and drops them:
        # refuse rather than let a datagram leave without them.
        return where, f"{where} ignores control messages passed to WSASendMsg"
    version = sys.getwindowsversion()  # type: ignore[attr-defined,unused-ignore]
    return f"windows {version.major}.{version.build}", None


_CONSTANTS = read_constants(ffi, lib)
_WHERE, _SEND_REFUSED = _platform()
PROVIDERS = ProviderFunctions()
IMPL = CffiBackend(
    ffi,
    lib,
    _CONSTANTS,
    OsHooks(
        name="winsock",
        platform=_WHERE,
        error=_error,
        would_block=frozenset({_CONSTANTS["WSAEWOULDBLOCK"]}),
        eintr=None,  # Winsock calls are not interrupted by signals
        closed=_CONSTANTS["WSAENOTSOCK"],
        # Only MSG_PEEK is valid input for WSARecvMsg; Wine accepts anything,
        # so portmsg checks, to behave the same on both.
        recv_flags=_CONSTANTS["MSG_PEEK"],
        functions=PROVIDERS,
        send_controls_refused=_SEND_REFUSED,
        disable_udp_resets=_disable_udp_resets,
        timestamping=_timestamping,
        perf_frequency=int(lib.pm_qpc_frequency()),
    ),
)
