"""The receive side of both compiled backends: one C call per datagram (or batch), decoded in Python.

`CffiBackend` wires the shared parts around one compiled module (buffers:
_scratch.py, waiting: _wait.py, addresses: _sockaddr.py, sending:
_send.py) and holds the receive entry points.  What differs per OS comes in
as an `OsHooks` (_hooks.py); this module never imports a compiled module.
"""

from __future__ import annotations

import contextlib
import operator
import os
import socket
import struct
from typing import TYPE_CHECKING, Any, TypeVar

from . import _args
from ._report import HEADER, RECORD, SAME_CONTROL, SAME_NAME, check, items, records_room
from ._scratch import Scratches
from ._send import Sender
from ._sockaddr import SockaddrCodec
from ._wait import Waiter

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ._hooks import OsHooks
    from ._report import Decode, NativeControl
    from ._scratch import Scratch

__all__ = ["CffiBackend", "Level1Result", "RecvIntoResult", "read_constants"]

Level1Result = tuple[bytes, list["NativeControl"], int, Any]
RecvIntoResult = tuple[int, list["NativeControl"], int, Any]
T = TypeVar("T")

_SOCKET = socket.socket
_SOCKLEN_MAX = 0x7FFFFFFF  # CPython's SOCKLEN_T_LIMIT
_LEVEL1_CACHE_SIZE = 256  # distinct control byte strings whose Level-1 items are kept


def read_constants(ffi: Any, lib: Any) -> dict[str, int]:
    """The compiled module's constants table (see _csrc/constants.txt), checked against _report."""
    count = ffi.new("int *")
    table = lib.pm_constants(count)
    constants = {ffi.string(table[i].name).decode(): int(table[i].value) for i in range(count[0])}
    check(constants)
    return constants


def _timeval(constants: dict[str, int]) -> struct.Struct:
    """Struct timeval (seconds, microseconds) from the compiled layout facts."""
    fmt = {4: "i", 8: "q"}
    sec, usec = constants["PM_SIZEOF_TIME_T"], constants["PM_TIMEVAL_USEC_SIZE"]
    offset, size = constants["PM_TIMEVAL_USEC_OFFSET"], constants["PM_TIMEVAL_SIZE"]
    return struct.Struct(f"={fmt[sec]}{offset - sec}x{fmt[usec]}{size - offset - usec}x")


class CffiBackend:
    """Receive over one compiled portmsg module (see _csrc/portmsg.h); sending is `self.sender`."""

    def __init__(self, ffi: Any, lib: Any, constants: dict[str, int], hooks: OsHooks) -> None:
        self.ffi = ffi
        self.lib = lib
        self.hooks = hooks
        self.name = hooks.name
        self.platform = hooks.platform
        self.constants = c = constants
        self.codec = SockaddrCodec(c)
        self.waiter = Waiter(hooks, _timeval(c) if hooks.dontwait else None)
        self.sender = Sender(ffi, lib, hooks, self.codec, self.waiter)
        self._cmsg_header = int(lib.pm_cmsg_len(0))
        self.scratches = Scratches(
            ffi, c["PM_SIZEOF_SOCKADDR_STORAGE"], self._cmsg_header, c.get("PM_BATCH_VECTOR_SIZE", 0)
        )
        self._rights = (c["SOL_SOCKET"], c["SCM_RIGHTS"]) if "SCM_RIGHTS" in c else None
        self._level1_cache: dict[bytes, tuple[NativeControl, ...]] = {}
        # The hot paths read these as attributes of self, bound once here.
        self._plain = hooks.plain
        self._dontwait = hooks.dontwait
        self._single = self.scratches.single
        self._fit = self.scratches.fit
        self._address = self.codec.decode
        self._pm_recv = lib.pm_recv
        self._pm_recv_batch = lib.pm_recv_batch
        self._unpack = ffi.unpack
        self.level1 = self._level1  # one bound method, not one per call

    # -- control-message sizes ---------------------------------------------------------

    def cmsg_len(self, length: int) -> int:
        """CMSG_LEN / WSA_CMSG_LEN, with the stdlib's range check."""
        return self._cmsg_size(self.lib.pm_cmsg_len, length, "CMSG_LEN")

    def cmsg_space(self, length: int) -> int:
        """CMSG_SPACE / WSA_CMSG_SPACE, with the stdlib's range check."""
        return self._cmsg_size(self.lib.pm_cmsg_space, length, "CMSG_SPACE")

    def _cmsg_size(self, func: Any, length: int, what: str) -> int:
        length = operator.index(length)
        # As CPython: the length and the result must fit a socklen_t-sized length.
        if 0 <= length <= _SOCKLEN_MAX:
            result = int(func(length))
            if length <= result <= _SOCKLEN_MAX:
                return result
        msg = f"{what}() argument out of range"
        raise OverflowError(msg)

    # -- receive ---------------------------------------------------------------------

    def receive(self, sock: Any, bufsize: int, ancbufsize: int, flags: int, decode: Decode[T]) -> T:
        """One datagram, handed to decode (see _report.Decode).

        The hot path of recvmsg and recv, written out flat on purpose: every
        Python call here costs a few percent of a loopback receive.  Only
        failures and unusual sockets leave it (_receive_checked).
        """
        pool = self._single
        try:
            st = pool.pop()
        except IndexError:
            st = self.scratches.new()
        try:
            if bufsize != st.datalen or ancbufsize != st.controllen:
                self._fit(st, bufsize, ancbufsize)
            if type(sock) is _SOCKET and self._plain:
                n = self._pm_recv(sock.fileno(), flags | self._dontwait, st.args)
                if n < 0:
                    n = self._receive_checked(sock, st.args, flags, 0, -n)
            else:
                n = self._receive_checked(sock, st.args, flags, 0)
            h = st.head_view
            same = h[5]
            if same & SAME_CONTROL:
                control = st.last_control
            else:
                control = st.last_control = st.control_view[: h[3]].tobytes()
            try:
                nbytes = h[0]
                # With MSG_TRUNC as input Linux returns the full length: clip it, as CPython does.
                data = st.data_view[: nbytes if nbytes < bufsize else bufsize].tobytes()  # noqa: FURB136 - min() costs a call
                if not same & SAME_NAME:
                    st.last_address = self._address(st.name_view[: h[2]].tobytes())
                return decode(data, st.last_address, h[1], control, st.records_view, 0, n)
            except BaseException:
                self._discard(st, [(control, st.records_view, 0, n)])
                raise
        finally:
            pool.append(st)

    def receive_into(
        self, sock: Any, cbufs: list[Any], ancbufsize: int, flags: int, decode: Decode[T]
    ) -> tuple[int, T]:
        """One datagram into the caller's buffers (cffi views); decode gets data b""."""
        ffi = self.ffi
        pool = self._single
        try:
            st = pool.pop()
        except IndexError:
            st = self.scratches.new()
        args = st.args
        try:
            if ancbufsize != st.controllen:
                self._fit(st, max(st.datalen, 0), ancbufsize)
            # Point the preset arguments at the caller's buffers for this one call.
            args.data, args.datalen = (cbufs[0], len(cbufs[0])) if cbufs else (ffi.NULL, 0)
            if len(cbufs) > 1:
                from ._send import buffer_array  # noqa: PLC0415 - only scatter receives need it

                args.more, args.nmore = buffer_array(ffi, cbufs[1:])
            n = self._receive_checked(sock, args, flags, 0)
            h = st.head_view
            same = h[5]
            if same & SAME_CONTROL:
                control = st.last_control
            else:
                control = st.last_control = st.control_view[: h[3]].tobytes()
            try:
                if not same & SAME_NAME:
                    st.last_address = self._address(st.name_view[: h[2]].tobytes())
                return h[0], decode(b"", st.last_address, h[1], control, st.records_view, 0, n)
            except BaseException:
                self._discard(st, [(control, st.records_view, 0, n)])
                raise
        finally:
            args.data, args.datalen = st.data, max(0, st.datalen)
            args.more, args.nmore = ffi.NULL, 0
            pool.append(st)

    def receive_batch(
        self, sock: Any, count: int, bufsize: int, ancbufsize: int, flags: int, decode: Decode[T]
    ) -> list[T]:
        """Up to count datagrams in one call, blocking for the first only; each handed to decode."""
        st = self.scratches.take_batch(count, bufsize, ancbufsize)
        try:
            got = self._receive_checked(sock, st.args, flags, count)
            heads = self._unpack(st.head, HEADER * got)
            records, data_view, control_view, name_view = st.records_view, st.data_view, st.control_view, st.name_view
            dataslot, controlslot, nameslot = max(bufsize, 1), max(ancbufsize, 1), st.args.namelen
            stride = RECORD * records_room(ancbufsize, self._cmsg_header)
            address, control = st.last_address, st.last_control
            messages: list[T] = []
            try:
                for i in range(got):
                    h = HEADER * i
                    nbytes, same = heads[h], heads[h + 5]
                    if not same & SAME_NAME:
                        start = i * nameslot
                        address = self._address(name_view[start : start + heads[h + 2]].tobytes())
                    if not same & SAME_CONTROL:
                        start = i * controlslot
                        control = control_view[start : start + heads[h + 3]].tobytes()
                    start = i * dataslot
                    data = data_view[start : start + (nbytes if nbytes < bufsize else bufsize)].tobytes()  # noqa: FURB136
                    messages.append(decode(data, address, heads[h + 1], control, records, i * stride, heads[h + 4]))
            except BaseException:  # nothing is handed over: close every datagram's descriptors
                self._discard(
                    st,
                    [
                        (
                            control_view[j * controlslot : j * controlslot + heads[HEADER * j + 3]].tobytes(),
                            records,
                            j * stride,
                            heads[HEADER * j + 4],
                        )
                        for j in range(got)
                    ],
                )
                raise
            st.last_address, st.last_control = address, control
            return messages
        finally:
            self.scratches.give_batch(st)

    def _receive_checked(self, sock: Any, args: Any, flags: int, count: int, failed: int = 0) -> int:
        """A receive (count 0) or batch with every check the fast path skips, retried and waited for.

        Args:
            sock: a socket, or a wrapper around one (see _args.sock_of).
            args: the preset pm_recv_args.
            flags: the caller's input flags.
            count: datagrams for a batch; 0 for one receive.
            failed: the error code of a fast-path call already made, or 0.

        Returns:
            The records count (one receive) or datagram count (batch).

        """
        sock = _args.sock_of(sock)
        hooks = self.hooks
        if hooks.recv_flags is not None and flags & ~hooks.recv_flags:
            msg = f"flags: {hooks.name} receives take only {hooks.recv_flags:#x} (MSG_PEEK) as input, not {flags:#x}"
            raise ValueError(msg)
        sliced = bool(self._dontwait & ~flags)
        call_flags = flags | self._dontwait
        code, deadline = failed, None
        fd = sock.fileno()
        if fd < 0:
            raise hooks.error(hooks.closed)
        while True:
            if not code:
                if hooks.functions is not None:
                    args.fn = hooks.functions(sock, fd)[0]
                n: int = (
                    self._pm_recv_batch(fd, call_flags, count, args) if count else self._pm_recv(fd, call_flags, args)
                )
                if n >= 0:
                    return n
                code = -n
            fd, deadline = self.waiter.recover(sock, code, deadline, write=False, sliced=sliced)
            code = 0

    def _discard(self, st: Scratch, datagrams: list[tuple[bytes, Any, int, int]]) -> None:
        """After a failure past the receive: nothing was handed over, so close what the datagrams carried."""
        self.scratches.forget(st)
        for control, records, base, count in datagrams:
            self.close_fds(items(control, records, base, count))

    def _level1(
        self, data: bytes, address: Any, flags: int, control: bytes, records: Any, base: int, count: int
    ) -> Level1Result:
        """The Decode of Level 1: the stdlib's (data, ancdata, msg_flags, address)."""
        if not count:
            return data, [], flags, address
        cached = self._level1_cache.get(control)
        if cached is None:
            cached = tuple(items(control, records, base, count))
            if len(self._level1_cache) >= _LEVEL1_CACHE_SIZE:
                self._level1_cache.clear()
            self._level1_cache[control] = cached
        return data, list(cached), flags, address

    def close_fds(self, ancdata: Iterable[NativeControl]) -> None:
        """Close every descriptor carried by SCM_RIGHTS items (for error paths)."""
        if self._rights is None:
            return
        for level, kind, data in ancdata:
            if (level, kind) == self._rights:
                for (fd,) in struct.iter_unpack("=i", data[: len(data) - len(data) % 4]):
                    with contextlib.suppress(OSError):
                        os.close(fd)

    def disable_udp_resets(self, sock: Any) -> frozenset[str]:
        """Turn off the OS's ICMP-reset reporting on a UDP socket; return what was turned off."""
        sock = _args.sock_of(sock)
        fd = sock.fileno()
        if fd < 0:
            raise self.hooks.error(self.hooks.closed)
        hook = self.hooks.disable_udp_resets
        return frozenset() if hook is None else hook(fd)
