"""The Backend protocol, and the pick of the one this platform uses."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterable

    from ._glue import Decode, NativeControl, RecvResult

__all__ = ["IMPL", "Backend"]

T = TypeVar("T")


class Backend(Protocol):
    """What _api needs from a backend: native numbers in, native tuples out."""

    name: str
    platform: str
    constants: dict[str, int]

    def recvmsg(
        self, sock: socket.socket, bufsize: int, ancbufsize: int = 0, flags: int = 0
    ) -> tuple[bytes, list[NativeControl], int, Any]: ...
    def recvmsg_into(
        self, sock: socket.socket, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0
    ) -> RecvResult: ...
    def sendmsg(
        self,
        sock: socket.socket,
        buffers: Iterable[Any],
        ancdata: Iterable[Any] = (),
        flags: int = 0,
        address: Any = None,
    ) -> int: ...
    def sendmsg_batch(
        self, sock: socket.socket, datagrams: list[tuple[Any, Any, list[Any]]], flags: int = 0
    ) -> int: ...
    def cmsg_len(self, length: int) -> int: ...
    def cmsg_space(self, length: int) -> int: ...
    def walk(self, control: bytes) -> list[tuple[int, int, int, int]]: ...
    def receive(self, sock: socket.socket, bufsize: int, ancbufsize: int, flags: int, decode: Decode[T]) -> T: ...
    def writable(self, buffers: list[Any], error: str) -> list[Any]: ...
    def receive_into(
        self, sock: socket.socket, cbufs: list[Any], ancbufsize: int, flags: int, decode: Decode[T]
    ) -> tuple[int, T]: ...
    def receive_batch(
        self, sock: socket.socket, count: int, bufsize: int, ancbufsize: int, flags: int, decode: Decode[T]
    ) -> list[T]: ...
    def close_fds(self, ancdata: Iterable[NativeControl]) -> None: ...
    def disable_udp_resets(self, sock: socket.socket) -> frozenset[str]: ...


if sys.platform == "win32":
    from ._winsock import BACKEND as _BACKEND
else:
    from ._posix import BACKEND as _BACKEND

IMPL: Backend = _BACKEND
