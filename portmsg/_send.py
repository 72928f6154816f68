"""The send path: sendmsg, batches, and native control buffers laid out by the C encoder."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from . import _args
from ._report import RECORD

if TYPE_CHECKING:
    import socket
    from collections.abc import Iterable

    from ._hooks import OsHooks
    from ._normalize import Normalizer
    from ._sockaddr import SockaddrCodec
    from ._types import Control
    from ._wait import Waiter

__all__ = ["MAX_BATCH", "Prepared", "Sender"]

MAX_BATCH = 1024  # UIO_MAXIOV: the most datagrams one recvmmsg / sendmmsg takes
Prepared = tuple[Any, bytes, tuple[Any, int]]
"""One datagram ready for the C side: (data view, sockaddr bytes (b"": connected), encoded controls)."""


class Sender:
    """Send over one compiled portmsg module (pm_send, pm_send_batch, pm_encode)."""

    def __init__(
        self, ffi: Any, lib: Any, hooks: OsHooks, codec: SockaddrCodec, normalizer: Normalizer, waiter: Waiter
    ) -> None:
        self._ffi = ffi
        self._lib = lib
        self._hooks = hooks
        self._codec = codec
        self._normalizer = normalizer
        self._waiter = waiter
        self._af_inet6 = normalizer.constants["AF_INET6"]
        self._null = ffi.NULL
        self._pm_send = lib.pm_send
        self._pm_send_packed = lib.pm_send_packed

    def prepare(
        self, sock: socket.socket, family: int, data: Any, address: Any, controls: Iterable[Control]
    ) -> Prepared:
        """One datagram for the send path; raises (ValueError, TypeError, OSError) before anything is sent."""
        name = b"" if address is None else self._codec.encode(family, address, "send")
        cdata = _args.readable(self._ffi, data)
        if not controls:
            return cdata, name, (self._ffi.NULL, 0)
        ancdata = self._normalizer.encode(controls, family, ipv4_destination=self._ipv4_destination(sock, family, name))
        return cdata, name, self.encode_control(ancdata)

    def _ipv4_destination(self, sock: socket.socket, family: int, name: bytes) -> bool | None:
        """On an AF_INET6 socket: whether the datagram goes to an IPv4-mapped address (None: not AF_INET6)."""
        if family != self._af_inet6:
            return None
        if not name:  # connected: the peer is the destination
            try:
                return self._codec.is_ipv4_mapped(self._codec.encode(family, sock.getpeername(), "send"))
            except OSError:
                return None  # not connected: the send itself will say so
        return self._codec.is_ipv4_mapped(name)

    def sendmsg(self, sock: Any, buffers: Any, ancdata: Any = (), flags: int = 0, address: Any = None) -> int:
        """socket.sendmsg on any platform; arguments are checked in the stdlib's order."""
        ffi = self._ffi
        sock = _args.sock_of(sock)
        flags = _args.c_int(flags)
        name = b"" if address is None else self._codec.encode(sock.family, address)
        cbufs = [
            _args.readable(ffi, item) for item in _args.listed(buffers, "sendmsg() argument 1 must be an iterable")
        ]
        control = self.encode_control(_args.listed(ancdata, "sendmsg() argument 2 must be an iterable"))
        return self.send_encoded(sock, cbufs, control, name, flags)

    def send_one(self, sock: socket.socket, data: Any, name: bytes, control: bytes) -> int:
        """One datagram to sockaddr bytes (b"": connected) with control bytes: the hot path.

        One C call when it goes; waiting, retries and errors take send_encoded's way.
        """
        functions = self._hooks.functions
        fd = sock.fileno()
        fn = self._null if functions is None or fd < 0 else functions(sock, fd)[1]
        cdata = data if type(data) is bytes else _args.readable(self._ffi, data)
        sent: int = self._pm_send(fn, fd, cdata, len(cdata), self._null, 0, name, len(name), control, len(control), 0)
        if sent >= 0:
            return sent
        ccontrol = self._ffi.from_buffer(control) if control else self._null
        return self.send_encoded(sock, [cdata], (ccontrol, len(control)), name, 0)  # nothing went: the full way

    def send_packed(self, sock: socket.socket, datas: list[bytes], names: list[bytes], controls: list[bytes]) -> int:
        """Datagrams (data, sockaddr bytes, control bytes) in one C call (sendmmsg where the OS has it), no waiting.

        Returns how many went, in order; raises the first one's error when none did.
        """
        n = len(datas)
        if not 0 < n <= MAX_BATCH:
            msg = f"datagrams: send between 1 and {MAX_BATCH} at once, not {n}"
            raise ValueError(msg)
        lens = self._ffi.new(
            "long long[]", [size for i in range(n) for size in (len(datas[i]), len(names[i]), len(controls[i]))]
        )
        fd = sock.fileno()
        functions = self._hooks.functions
        fn = self._null if functions is None or fd < 0 else functions(sock, fd)[1]
        while True:
            sent = int(self._pm_send_packed(fn, fd, b"".join(datas), b"".join(names), b"".join(controls), lens, n))
            if sent >= 0:
                return sent
            if -sent != self._hooks.eintr:
                raise self._hooks.error(-sent if fd >= 0 else self._hooks.closed)

    def send_encoded(
        self, sock: socket.socket, cbufs: list[Any], control: tuple[Any, int], name: bytes, flags: int
    ) -> int:
        """Send buffers (cffi views) with an encoded control buffer to sockaddr bytes (b"": connected)."""
        ffi = self._ffi
        first, first_len = (cbufs[0], len(cbufs[0])) if cbufs else (ffi.NULL, 0)
        more, nmore = buffer_array(ffi, cbufs[1:])
        cname = ffi.from_buffer(name) if name else ffi.NULL
        fd = self._fd(sock)
        deadline = None
        while True:
            fn = self._function(sock, fd)
            sent = self._lib.pm_send(fn, fd, first, first_len, more, nmore, cname, len(name), *control, flags)
            if sent >= 0:
                return int(sent)
            fd, deadline = self._waiter.recover(sock, int(-sent), deadline, write=True, sliced=False)

    def send_batch(self, sock: socket.socket, datagrams: list[tuple[Any, bytes, tuple[Any, int]]]) -> int:
        """Send (cffi data view, sockaddr bytes, encoded control) datagrams in one call (sendmmsg) or a loop.

        Returns how many went: a count below len(datagrams) means the OS took
        only those (for example a full non-blocking send buffer).
        """
        ffi = self._ffi
        if not 0 < len(datagrams) <= MAX_BATCH:
            msg = f"datagrams: send between 1 and {MAX_BATCH} at once, not {len(datagrams)}"
            raise ValueError(msg)
        items = ffi.new("pm_send_item[]", len(datagrams))
        keep = []
        for i, (cdata, name, (control, controllen)) in enumerate(datagrams):
            cname = ffi.from_buffer(name) if name else ffi.NULL
            keep.append(cname)  # alive until the call returns
            item = items[i]
            item.data, item.datalen = cdata, len(cdata)
            item.name, item.namelen = cname, len(name)
            item.control, item.controllen = control, controllen
        fd = self._fd(sock)
        deadline = None
        while True:
            sent = int(self._lib.pm_send_batch(self._function(sock, fd), fd, items, len(datagrams), 0))
            if sent >= 0:
                return sent
            fd, deadline = self._waiter.recover(sock, -sent, deadline, write=True, sliced=False)

    def encode_control(self, ancdata: list[Any]) -> tuple[Any, int]:
        """Lay out (level, type, data) items as a native control buffer: (cdata, length), (NULL, 0) for none.

        Raises:
            TypeError / OverflowError: an item the stdlib's sendmsg would refuse.
            OSError(EOPNOTSUPP): control messages cannot be sent on this platform (Wine).

        """
        ffi = self._ffi
        if not ancdata:
            return ffi.NULL, 0
        n = len(ancdata)
        records = ffi.new("long long[]", RECORD * n)
        payloads = []
        offset = total = 0
        for i, item in enumerate(ancdata):
            try:
                level, kind, data = item
            except (TypeError, ValueError):
                size = len(item) if hasattr(item, "__len__") else "?"
                msg = f"[sendmsg() ancillary data items]() argument must be sequence of length 3, not {size}"
                raise TypeError(msg) from None
            level, kind = _args.c_int(level), _args.c_int(kind)
            payload = _bytes(data)
            records[RECORD * i : RECORD * i + RECORD] = [level, kind, offset, len(payload)]
            payloads.append(payload)
            offset += len(payload)
            total += int(self._lib.pm_cmsg_space(len(payload)))
        if self._hooks.send_controls_refused:
            msg = f"{self._hooks.send_controls_refused}; nothing was sent"
            raise OSError(errno.EOPNOTSUPP, msg)
        blob = b"".join(payloads)
        control = ffi.new("char[]", total)
        used = self._lib.pm_encode(records, n, ffi.from_buffer(blob), control, total)
        if used != total:  # cannot happen: total is the sum of CMSG_SPACEs and every value was checked
            msg = "ancillary data does not fit"
            raise OSError(errno.EINVAL, msg)
        return control, total

    def _fd(self, sock: socket.socket) -> int:
        fd = sock.fileno()
        if fd < 0:
            raise self._hooks.error(self._hooks.closed)
        return fd

    def _function(self, sock: socket.socket, fd: int) -> Any:
        functions = self._hooks.functions
        return self._ffi.NULL if functions is None else functions(sock, fd)[1]


def buffer_array(ffi: Any, cbufs: list[Any]) -> tuple[Any, int]:
    """Cffi buffers as a pm_buf array and its length ((NULL, 0) for none)."""
    if not cbufs:
        return ffi.NULL, 0
    array = ffi.new("pm_buf[]", len(cbufs))
    for i, cbuf in enumerate(cbufs):
        array[i].base = cbuf
        array[i].len = len(cbuf)
    return array, len(cbufs)


def _bytes(item: object) -> bytes:
    """Copy a bytes-like object (same TypeError text as the stdlib)."""
    try:
        return bytes(memoryview(item))  # type: ignore[arg-type]
    except TypeError:
        msg = f"a bytes-like object is required, not '{type(item).__name__}'"
        raise TypeError(msg) from None
