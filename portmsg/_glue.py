"""What both cffi backends share: buffers, the wait/retry loop, addresses, sends.

`CffiBackend` holds everything that is not truly OS code; both compiled
modules have the same entry points (_csrc/portmsg.h).  `_posix.py` and
`_winsock.py` subclass it with what differs: the per-socket WSARecvMsg /
WSASendMsg pointers, the allowed input flags, and the mapping of an OS error
code onto the exception the stdlib would raise.  This module never imports a
compiled module itself.
"""

from __future__ import annotations

import contextlib
import errno
import math
import operator
import os
import select
import socket
import struct
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["HEADER", "MAX_BATCH", "RECORD", "CffiBackend", "Decode", "NativeControl", "RecvResult"]

NativeControl = tuple[int, int, bytes]
RecvResult = tuple[int, list[NativeControl], int, Any]
Level1Result = tuple[bytes, list[NativeControl], int, Any]
T = TypeVar("T")
Decode = Callable[[bytes, Any, int, bytes, Any, int, int], T]
"""decode(data, address, native flags, control bytes, records, base, count) -> a message.

records[base : base + RECORD * count] are the datagram's control records,
RECORD values [level, type, offset, length] each (see _csrc/portmsg.h),
valid only during the call."""

HEADER = 6  # PM_HEADER in portmsg.h: nbytes, flags, namelen, controllen, nrecords, same
RECORD = 4  # PM_RECORD: level, type, offset, length
SAME_NAME = 1  # PM_SAME_NAME
SAME_CONTROL = 2  # PM_SAME_CONTROL

_ADDRESS_CACHE_SIZE = 1024
_CLOSE_CHECK = 0.25  # seconds a blocking receive waits before checking that its socket is still open
_ITEMS_CACHE_SIZE = 256
_SOCKET = socket.socket
MAX_BATCH = 1024  # UIO_MAXIOV: the most one recvmmsg / sendmmsg takes
_SIN = struct.Struct("!H4s")  # port, address (after the family field)
_SIN6 = struct.Struct("!HI16s")  # port, flowinfo, address
_SCOPE = struct.Struct("=I")
_MAX_PORT = 0xFFFF
_MAX_FLOWINFO = 0xFFFFF  # 20 bits


def _wait(fd: int, timeout: float, *, write: bool) -> bool:
    """Wait until fd is readable (or writable) or timeout seconds pass; True if ready."""
    if sys.platform == "win32":
        ready = select.select([], [fd], [fd], timeout) if write else select.select([fd], [], [fd], timeout)
        return any(ready)
    poller = select.poll()
    poller.register(fd, (select.POLLOUT if write else select.POLLIN) | select.POLLERR | select.POLLHUP)
    return bool(poller.poll(max(0, math.ceil(timeout * 1000))))


def _index(value: Any) -> int:
    """Convert like the stdlib's integer arguments (same TypeError text)."""
    return operator.index(value)


def _bytes(item: object) -> bytes:
    """Copy a bytes-like object (same TypeError text as the stdlib)."""
    try:
        return bytes(memoryview(item))  # type: ignore[arg-type]
    except TypeError:
        msg = f"a bytes-like object is required, not '{type(item).__name__}'"
        raise TypeError(msg) from None


class _Scratch:
    """One set of receive buffers, preset in a pm_recv_args and reused from call to call."""

    __slots__ = (
        "args",
        "control",
        "control_size",
        "control_view",
        "controllen",
        "data",
        "data_size",
        "data_view",
        "datalen",
        "head",
        "head_view",
        "last_address",
        "last_control",
        "name",
        "name_view",
        "prev_control",
        "prev_name",
        "records",
        "records_view",
        "slots",
    )

    def __init__(self, args: Any, slots: int) -> None:
        self.args = args
        self.slots = slots
        empty = memoryview(b"")
        self.data: Any = None
        self.name: Any = None
        self.control: Any = None
        self.records: Any = None
        self.head: Any = None
        self.prev_name: Any = None
        self.prev_control: Any = None
        # The objects built for the last datagram, reused when the C side
        # reports the same sender / control bytes (PM_SAME_*).
        self.last_address: Any = None
        self.last_control = b""
        self.data_view = self.name_view = self.control_view = self.records_view = self.head_view = empty
        self.data_size = self.control_size = self.datalen = self.controllen = -1


class CffiBackend:
    """Receive and send over one compiled portmsg module (see _csrc/portmsg.h).

    Subclasses set `name`, and may set `_providers` (a function returning the
    per-socket (recv, send) function pointers), `_allowed_recv_flags`, and
    override `_error` and `_would_block`.
    """

    name = ""
    EINTR: int | None = errno.EINTR
    platform: str = sys.platform
    """Where this runs: sys.platform on POSIX; "windows 10.0.x" or "wine 8.0" on Windows."""
    _send_controls_refused: str | None = None
    """Why control messages cannot be sent here (Wine drops them), or None."""
    _allowed_recv_flags: int | None = None
    """Input flags the receive call accepts (None: any)."""
    _plain = True
    """No flag check and no per-socket function pointer: the fast path may skip both."""

    def __init__(self, ffi: Any, lib: Any) -> None:
        self.ffi = ffi
        self.lib = lib
        count = ffi.new("int *")
        table = lib.pm_constants(count)
        self.constants: dict[str, int] = {
            ffi.string(table[i].name).decode(): int(table[i].value) for i in range(count[0])
        }
        c = self.constants
        if (c["PM_HEADER"], c["PM_RECORD"], c["PM_SAME_NAME"], c["PM_SAME_CONTROL"]) != (
            HEADER,
            RECORD,
            SAME_NAME,
            SAME_CONTROL,
        ):
            msg = "portmsg's compiled module does not match its Python code; reinstall portmsg"
            raise ImportError(msg)
        self._name_size = c["PM_SIZEOF_SOCKADDR_STORAGE"]
        self._family_offset = c["PM_SA_FAMILY_OFFSET"]
        self._family_struct = struct.Struct("=" + {1: "B", 2: "H"}[c["PM_SA_FAMILY_SIZE"]])
        self._af_inet = c["AF_INET"]
        self._af_inet6 = c["AF_INET6"]
        self._af_unix = c.get("AF_UNIX") if "PM_SUN_PATH_OFFSET" in c else None
        self._header = int(lib.pm_cmsg_len(0))
        self._alloc = ffi.new_allocator(should_clear_after_alloc=False)
        self._address_cache: dict[bytes, Any] = {}
        self._items_cache: dict[bytes, tuple[NativeControl, ...]] = {}
        self._level1_decode = self._level1  # one bound method, not one per call
        self._rights = (c["SOL_SOCKET"], c["SCM_RIGHTS"]) if "SCM_RIGHTS" in c else None
        self._pool: list[_Scratch] = []
        self._pools: dict[int, list[_Scratch]] = {1: self._pool}
        self._providers: Any = None
        # POSIX receives never block in the kernel: see _recover.
        self._dontwait = c.get("MSG_DONTWAIT", 0)
        self._pm_recv = lib.pm_recv
        self._unpack = ffi.unpack
        self._pm_recv_batch = lib.pm_recv_batch

    # -- per-OS hooks -------------------------------------------------------------------

    def _error(self, code: int) -> OSError:
        """The exception the stdlib raises for this OS error code."""
        return OSError(code, os.strerror(code))

    def _would_block(self, code: int) -> bool:
        return code in (errno.EAGAIN, errno.EWOULDBLOCK)

    def _ebadf(self) -> int:
        return errno.EBADF

    def disable_udp_resets(self, sock: socket.socket) -> frozenset[str]:
        """POSIX has no UDP resets to turn off: it reports ICMP errors only on connected sockets."""
        self._fd(sock)
        return frozenset()

    # -- shared helpers -------------------------------------------------------------------

    def cmsg_len(self, length: int) -> int:
        """CMSG_LEN / WSA_CMSG_LEN."""
        return self._cmsg_size(self.lib.pm_cmsg_len, length, "CMSG_LEN")

    def cmsg_space(self, length: int) -> int:
        """CMSG_SPACE / WSA_CMSG_SPACE."""
        return self._cmsg_size(self.lib.pm_cmsg_space, length, "CMSG_SPACE")

    def _cmsg_size(self, func: Any, length: int, what: str) -> int:
        length = _index(length)
        # Same bound as CPython: the result must fit a socklen_t-sized length.
        if not 0 <= length <= 0x7FFFFFFF - self._header - 8:
            msg = f"{what}() argument out of range"
            raise OverflowError(msg)
        return int(func(length))

    def walk(self, control: bytes) -> list[tuple[int, int, int, int]]:
        """Run the C walker over raw control bytes: (level, type, offset, length) records."""
        data = bytes(control)
        maxrecords = len(data) // self._header + 1
        records = self.ffi.new("long long[]", RECORD * maxrecords)
        n = self.lib.pm_walk(self.ffi.from_buffer(data), len(data), records, maxrecords)
        flat = self.ffi.unpack(records, RECORD * n)
        return [(flat[i], flat[i + 1], flat[i + 2], flat[i + 3]) for i in range(0, RECORD * n, RECORD)]

    def _function(self, sock: socket.socket, fd: int, which: int) -> Any:
        """The provider's WSARecvMsg (0) / WSASendMsg (1) on Windows; NULL on POSIX."""
        return self.ffi.NULL if self._providers is None else self._providers(sock, fd)[which]

    def _recover(
        self, sock: socket.socket, fd: int, code: int, deadline: float | None, *, write: bool, user_flags: int = 0
    ) -> float | None:
        """After a failed call: retry on EINTR, wait as the socket's timeout says, or raise as the stdlib does.

        Receives on POSIX always pass MSG_DONTWAIT and wait here instead, in
        slices: a blocking receive then also ends (EBADF) when another thread
        closes the socket, where a recvmsg blocked in the kernel would hang.
        """
        if code == self.EINTR:
            return deadline  # PEP 475: pending signal handlers have run by now
        if not self._would_block(code):
            raise self._error(code)
        timeout = sock.gettimeout()
        if timeout is None and not write and self._dontwait & ~user_flags:
            while not _wait(fd, _CLOSE_CHECK, write=False):
                if sock.fileno() == -1:
                    raise self._error(self._ebadf())
            return None
        if timeout:
            if deadline is None:
                deadline = time.monotonic() + timeout
            remaining = deadline - time.monotonic()
            if remaining > 0 and _wait(fd, remaining, write=write):
                return deadline
            msg = "timed out"
            raise TimeoutError(msg)
        raise self._error(code)

    # -- receive ---------------------------------------------------------------------

    def _scratch(self, bufsize: int, ancbufsize: int, slots: int = 1) -> _Scratch:
        """A free set of buffers for `slots` datagrams, grown to fit; give it back with _release.

        Sets live in a per-size free list: pop and append are atomic, so two
        threads (or a signal handler inside a receive) never share one.
        """
        pool = self._pools.get(slots)
        st = pool.pop() if pool else self._new_scratch(slots)
        self._fit(st, bufsize, ancbufsize)
        return st

    def _release(self, st: _Scratch) -> None:
        self._pools.setdefault(st.slots, []).append(st)

    def _fit(self, st: _Scratch, bufsize: int, ancbufsize: int) -> None:
        args, slots = st.args, st.slots
        if bufsize > st.data_size:
            st.data = self._alloc("char[]", max(bufsize, 1) * slots)
            st.data_view = memoryview(self.ffi.buffer(st.data))
            st.data_size = bufsize
            args.data = st.data
        if bufsize != st.datalen:
            args.datalen = st.datalen = bufsize
        if ancbufsize > st.control_size:
            maxrecords = ancbufsize // self._header + 1
            st.control = self._alloc("char[]", max(ancbufsize, 1) * slots)
            st.control_view = memoryview(self.ffi.buffer(st.control))
            st.records = self._alloc("long long[]", RECORD * maxrecords * slots)
            st.records_view = memoryview(self.ffi.buffer(st.records)).cast("q")
            st.prev_control = self._alloc("char[]", max(ancbufsize, 1))
            st.control_size = ancbufsize
            args.control = st.control
            args.records = st.records
            args.prev_control = st.prev_control
            args.prev_controllen = -1
        if ancbufsize != st.controllen:
            args.controllen = st.controllen = ancbufsize
            args.maxrecords = ancbufsize // self._header + 1
            args.prev_controllen = -1

    @staticmethod
    def _forget(st: _Scratch) -> None:
        """After an error the last_* objects may not match the C side's copies: compare afresh."""
        st.args.prev_namelen = -1
        st.args.prev_controllen = -1

    def _new_scratch(self, slots: int) -> _Scratch:
        st = _Scratch(self.ffi.new("pm_recv_args *"), slots)
        st.name = self._alloc("char[]", self._name_size * slots)
        st.name_view = memoryview(self.ffi.buffer(st.name))
        st.args.name = st.name
        st.args.namelen = self._name_size
        st.head = self._alloc("long long[]", HEADER * slots)
        st.head_view = memoryview(self.ffi.buffer(st.head)).cast("q")
        st.args.head = st.head
        st.prev_name = self._alloc("char[]", self._name_size)
        st.args.prev_name = st.prev_name
        st.args.prev_namelen = -1
        st.args.prev_controllen = -1
        return st

    def _fd(self, sock: socket.socket) -> int:
        """Sock's descriptor; TypeError for a non-socket, the stdlib's error for a closed one."""
        if not isinstance(sock, socket.socket):
            msg = f"expected a socket.socket, not {type(sock).__name__}"
            raise TypeError(msg)
        fd = sock.fileno()
        if fd < 0:
            raise self._error(self._ebadf())
        return fd

    def _receive(self, sock: socket.socket, st: _Scratch, flags: int, count: int = 0) -> int:
        """One receive (count 0) or one batch into st; return the records (or datagrams) count."""
        fd = self._fd(sock)
        args = st.args
        self._check_flags(flags)
        if self._providers is not None:
            args.fn = self._function(sock, fd, 0)
        user_flags, flags = flags, flags | self._dontwait
        n: int = self._pm_recv_batch(fd, flags, count, args) if count else self._pm_recv(fd, flags, args)
        return n if n >= 0 else self._retry(sock, fd, flags, count, args, -n, user_flags)

    def _check_flags(self, flags: int) -> None:
        allowed = self._allowed_recv_flags
        if allowed is not None and flags & ~allowed:
            msg = f"flags: {self.name} receives take only {allowed:#x} (MSG_PEEK) as input, not {flags:#x}"
            raise ValueError(msg)

    def _retry(
        self, sock: socket.socket, fd: int, flags: int, count: int, args: Any, code: int, user_flags: int
    ) -> int:
        """The slow path after a failed receive: EINTR, a timeout socket's wait, or the error."""
        deadline = None
        while True:
            deadline = self._recover(sock, fd, code, deadline, write=False, user_flags=user_flags)
            n: int = self._pm_recv_batch(fd, flags, count, args) if count else self._pm_recv(fd, flags, args)
            if n >= 0:
                return n
            code = -n

    def _items(self, control: bytes, records: Any, base: int, count: int) -> list[NativeControl]:
        """Native (level, type, data) items from a datagram's records."""
        return [
            (records[i], records[i + 1], control[records[i + 2] : records[i + 2] + records[i + 3]])
            for i in range(base, base + RECORD * count, RECORD)
        ]

    def _address_from(self, view: Any, start: int, length: int) -> Any:
        """The sender's address in view[start : start + length], or None if there is none."""
        return self._address(view[start : start + length].tobytes()) if length else None

    def _level1(
        self, data: bytes, address: Any, flags: int, control: bytes, records: Any, base: int, count: int
    ) -> Level1Result:
        if not count:
            return data, [], flags, address
        items = self._items_cache.get(control)
        if items is None:
            items = tuple(self._items(control, records, base, count))
            if len(self._items_cache) >= _ITEMS_CACHE_SIZE:
                self._items_cache.clear()
            self._items_cache[control] = items
        return data, list(items), flags, address

    def recvmsg(self, sock: socket.socket, bufsize: int, ancbufsize: int = 0, flags: int = 0) -> Level1Result:
        """socket.recvmsg, on any platform."""
        if type(bufsize) is not int:
            bufsize = _index(bufsize)
        if type(ancbufsize) is not int:
            ancbufsize = _index(ancbufsize)
        if type(flags) is not int:
            flags = _index(flags)
        if bufsize < 0:
            msg = "negative buffer size in recvmsg()"
            raise ValueError(msg)
        if ancbufsize < 0:
            msg = "invalid ancillary data buffer length"
            raise ValueError(msg)
        return self.receive(sock, bufsize, ancbufsize, flags, self._level1_decode)

    def receive(self, sock: socket.socket, bufsize: int, ancbufsize: int, flags: int, decode: Decode[T]) -> T:
        """One datagram, handed to decode (see Decode).

        The hot path of recvmsg and recv, written out flat on purpose: every
        Python call here costs a few percent of a loopback receive.
        """
        pool = self._pool
        st = pool.pop() if pool else self._new_scratch(1)
        if bufsize != st.datalen or ancbufsize != st.controllen:
            self._fit(st, bufsize, ancbufsize)
        try:
            if type(sock) is not _SOCKET:
                self._fd(sock)  # raises TypeError for a non-socket
            fd = sock.fileno()
            if fd < 0 or not self._plain:
                n = self._receive(sock, st, flags)
            else:
                n = self._pm_recv(fd, flags | self._dontwait, st.args)
                if n < 0:
                    n = self._retry(sock, fd, flags | self._dontwait, 0, st.args, -n, flags)
            h = st.head_view
            same = h[5]
            if same & SAME_CONTROL:
                control = st.last_control
            else:
                control = st.last_control = st.control_view[: h[3]].tobytes()
            try:
                nbytes = h[0]
                # Like CPython: with MSG_TRUNC as input Linux returns the full length; clip it.
                data = st.data_view[: nbytes if nbytes < bufsize else bufsize].tobytes()  # noqa: FURB136 - min() costs a call
                if not same & SAME_NAME:
                    st.last_address = self._address_from(st.name_view, 0, h[2])
                return decode(data, st.last_address, h[1], control, st.records_view, 0, n)
            except BaseException:  # the datagram is taken: do not leak its descriptors
                self._forget(st)
                self.close_fds(self._items(control, st.records_view, 0, n))
                raise
        finally:
            pool.append(st)

    def receive_batch(
        self, sock: socket.socket, count: int, bufsize: int, ancbufsize: int, flags: int, decode: Decode[T]
    ) -> list[T]:
        """Up to count datagrams in one call, blocking for the first only; each handed to decode."""
        st = self._scratch(bufsize, ancbufsize, count)
        try:
            got = self._receive(sock, st, flags, count)
            heads = self._unpack(st.head, HEADER * got)
            records, data_view, control_view, name_view = st.records_view, st.data_view, st.control_view, st.name_view
            dataslot, controlslot, nameslot = max(bufsize, 1), max(ancbufsize, 1), self._name_size
            stride = RECORD * (ancbufsize // self._header + 1)
            messages: list[T] = []
            address, control = st.last_address, st.last_control
            try:
                for i in range(got):
                    h = HEADER * i
                    nbytes, namelen, nrecords, same = heads[h], heads[h + 2], heads[h + 4], heads[h + 5]
                    if not same & SAME_NAME:
                        address = self._address_from(name_view, i * nameslot, namelen)
                    if not same & SAME_CONTROL:
                        start = i * controlslot
                        control = control_view[start : start + heads[h + 3]].tobytes()
                    start = i * dataslot
                    data = data_view[start : start + (nbytes if nbytes < bufsize else bufsize)].tobytes()  # noqa: FURB136
                    messages.append(decode(data, address, heads[h + 1], control, records, i * stride, nrecords))
            except BaseException:  # nothing is handed over: close every datagram's descriptors
                self._forget(st)
                for j in range(got):
                    c = j * controlslot
                    taken = control_view[c : c + heads[HEADER * j + 3]].tobytes()
                    self.close_fds(self._items(taken, records, j * stride, heads[HEADER * j + 4]))
                raise
            st.last_address, st.last_control = address, control
            return messages
        finally:
            self._release(st)

    def recvmsg_into(
        self, sock: socket.socket, buffers: Iterable[Any], ancbufsize: int = 0, flags: int = 0
    ) -> RecvResult:
        """socket.recvmsg_into, on any platform."""
        try:
            items = list(buffers)
        except TypeError:
            msg = "recvmsg_into() argument 1 must be an iterable"
            raise TypeError(msg) from None
        if type(ancbufsize) is not int:
            ancbufsize = _index(ancbufsize)
        if type(flags) is not int:
            flags = _index(flags)
        cbufs = self.writable(
            items, "recvmsg_into() argument 1 must be an iterable of single-segment read-write buffers"
        )
        if ancbufsize < 0:
            msg = "invalid ancillary data buffer length"
            raise ValueError(msg)
        nbytes, (_, ancdata, msg_flags, address) = self.receive_into(
            sock, cbufs, ancbufsize, flags, self._level1_decode
        )
        return nbytes, ancdata, msg_flags, address

    def _more(self, cbufs: list[Any]) -> tuple[Any, int]:
        """The buffers after the first, as a pm_buf array and its length (NULL, 0 for none)."""
        if len(cbufs) < 2:  # noqa: PLR2004
            return self.ffi.NULL, 0
        more = self.ffi.new("pm_buf[]", len(cbufs) - 1)
        for i, cbuf in enumerate(cbufs[1:]):
            more[i].base = cbuf
            more[i].len = len(cbuf)
        return more, len(cbufs) - 1

    def writable(self, buffers: list[Any], error: str) -> list[Any]:
        """The buffers as cffi pointers the C side may write to; TypeError(error) otherwise."""
        try:
            return [self.ffi.from_buffer(item, require_writable=True) for item in buffers]
        except (TypeError, BufferError):
            raise TypeError(error) from None

    def receive_into(
        self, sock: socket.socket, cbufs: list[Any], ancbufsize: int, flags: int, decode: Decode[T]
    ) -> tuple[int, T]:
        """One datagram into the caller's buffers (cffi buffers from ffi.from_buffer); decode gets data b""."""
        ffi = self.ffi
        more, nmore = self._more(cbufs)
        pool = self._pool
        st = pool.pop() if pool else self._new_scratch(1)
        if ancbufsize != st.controllen:
            self._fit(st, max(st.datalen, 0), ancbufsize)
        args = st.args
        try:
            # Point the preset arguments at the caller's buffers for this one call.
            args.data = cbufs[0] if cbufs else ffi.NULL
            args.datalen = len(cbufs[0]) if cbufs else 0
            if nmore:
                args.more, args.nmore = more, nmore
            n = self._receive(sock, st, flags)
            h = st.head_view
            control = st.last_control if h[5] & SAME_CONTROL else st.control_view[: h[3]].tobytes()
            st.last_control = control
            try:
                if not h[5] & SAME_NAME:
                    st.last_address = self._address_from(st.name_view, 0, h[2])
                return h[0], decode(b"", st.last_address, h[1], control, st.records_view, 0, n)
            except BaseException:
                self._forget(st)
                self.close_fds(self._items(control, st.records_view, 0, n))
                raise
        finally:
            args.data, args.datalen = st.data, st.datalen
            if nmore:
                args.more, args.nmore = ffi.NULL, 0
            pool.append(st)

    def close_fds(self, ancdata: Iterable[NativeControl]) -> None:
        """Close every descriptor carried by SCM_RIGHTS items (for error paths)."""
        if self._rights is None:
            return
        for level, kind, data in ancdata:
            if (level, kind) == self._rights:
                for (fd,) in struct.iter_unpack("=i", data[: len(data) - len(data) % 4]):
                    with contextlib.suppress(OSError):
                        os.close(fd)

    # -- addresses -------------------------------------------------------------------

    def _address(self, raw: bytes) -> Any:
        """A sockaddr as the stdlib's socket methods return it."""
        if not raw:
            return None
        cached = self._address_cache.get(raw)
        if cached is not None:
            return cached
        (family,) = self._family_struct.unpack_from(raw, self._family_offset)
        body = self._family_offset + self._family_struct.size
        address: Any
        if family == self._af_inet and len(raw) >= body + _SIN.size:
            port, packed = _SIN.unpack_from(raw, body)
            address = (socket.inet_ntop(socket.AF_INET, packed), port)
        elif family == self._af_inet6 and len(raw) >= body + _SIN6.size + _SCOPE.size:
            port, flowinfo, packed = _SIN6.unpack_from(raw, body)
            (scope,) = _SCOPE.unpack_from(raw, body + _SIN6.size)
            host = socket.inet_ntop(socket.AF_INET6, packed)
            if scope:  # the stdlib formats scoped addresses with getnameinfo
                host = socket.getnameinfo((host, port, flowinfo, scope), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)[
                    0
                ]
            address = (host, port, flowinfo, scope)
        elif family == self._af_unix:
            path = raw[self.constants["PM_SUN_PATH_OFFSET"] :]
            if path[:1] == b"\0":  # Linux abstract namespace
                return path
            return os.fsdecode(path.split(b"\0", 1)[0])
        else:
            return (family, raw[body : body + 14].ljust(14, b"\0"))
        if len(self._address_cache) >= _ADDRESS_CACHE_SIZE:
            self._address_cache.clear()
        self._address_cache[raw] = address
        return address

    def sockaddr(self, sock: socket.socket, address: Any, caller: str = "sendmsg") -> bytes:
        """Encode a stdlib-style address for sock's family as sockaddr bytes."""
        family = sock.family
        if family in (self._af_inet, self._af_inet6):
            return self._sockaddr_inet(int(family), address, caller)
        if self._af_unix is not None and family == self._af_unix:
            path = os.fsencode(address) if isinstance(address, (str, os.PathLike)) else bytes(address)
            limit = self.constants["PM_SUN_PATH_SIZE"]
            if len(path) > limit or (path[:1] != b"\0" and len(path) >= limit):
                msg = "AF_UNIX path too long"
                raise OSError(msg)
            return self._family_header(family) + path
        msg = f"{caller}(): bad family {family!r}"
        raise OSError(msg)

    def _family_header(self, family: int) -> bytes:
        header = bytearray(self._family_offset + self._family_struct.size)
        self._family_struct.pack_into(header, self._family_offset, family)
        if self._family_offset:  # BSD sa_len; the kernel takes namelen instead
            header[0] = 0
        return bytes(header)

    def _sockaddr_inet(self, family: int, address: Any, caller: str) -> bytes:
        v6 = family == self._af_inet6
        name = "AF_INET6" if v6 else "AF_INET"
        if not isinstance(address, tuple):
            msg = f"{caller}(): {name} address must be tuple, not {type(address).__name__}"
            raise TypeError(msg)
        if not (2 <= len(address) <= (4 if v6 else 2)):  # noqa: PLR2004
            msg = f"{caller}(): {name} address must be a tuple (host, port{', flowinfo, scope_id' if v6 else ''})"
            raise TypeError(msg)
        host, port = address[0], _index(address[1])
        flowinfo = _index(address[2]) if len(address) > 2 else 0  # noqa: PLR2004
        scope = _index(address[3]) if len(address) > 3 else 0  # noqa: PLR2004
        if not 0 <= port <= _MAX_PORT:
            msg = f"{caller}(): port must be 0-65535."
            raise OverflowError(msg)
        if not 0 <= flowinfo <= _MAX_FLOWINFO:
            msg = f"{caller}(): flowinfo must be 0-1048575."
            raise OverflowError(msg)
        packed, scope = self._resolve(v6, host, scope)
        header = self._family_header(family)
        if v6:
            return header + _SIN6.pack(port, flowinfo, packed) + _SCOPE.pack(scope)
        return header + _SIN.pack(port, packed) + bytes(8)

    @staticmethod
    def _resolve(v6: bool, host: object, scope: int) -> tuple[bytes, int]:  # noqa: FBT001
        af = socket.AF_INET6 if v6 else socket.AF_INET
        if isinstance(host, (bytes, bytearray)):
            host = bytes(host).decode("idna")
        if not isinstance(host, str):
            msg = f"str, bytes or bytearray expected, not {type(host).__name__}"
            raise TypeError(msg)
        if host == "":
            return bytes(16 if v6 else 4), scope
        if host == "<broadcast>" and not v6:
            return b"\xff\xff\xff\xff", scope
        try:
            return socket.inet_pton(af, host), scope
        except OSError:
            pass
        info: tuple[Any, ...] = socket.getaddrinfo(host, None, af, socket.SOCK_DGRAM)[0][4]
        resolved_scope = int(info[3]) if v6 and not scope else scope
        return socket.inet_pton(af, str(info[0]).split("%", 1)[0]), resolved_scope

    # -- send ------------------------------------------------------------------------

    def sendmsg(
        self,
        sock: socket.socket,
        buffers: Iterable[Any],
        ancdata: Iterable[Any] = (),
        flags: int = 0,
        address: Any = None,
    ) -> int:
        """socket.sendmsg, on any platform."""
        ffi = self.ffi
        try:
            items = list(buffers)
        except TypeError:
            msg = "sendmsg() argument 1 must be an iterable"
            raise TypeError(msg) from None
        cbufs = [self._readable(item) for item in items]
        try:
            controls = list(ancdata)
        except TypeError:
            msg = "sendmsg() argument 2 must be an iterable"
            raise TypeError(msg) from None
        if type(flags) is not int:
            flags = _index(flags)
        control, controllen = self._send_control(controls)
        fd = self._fd(sock)
        name = b"" if address is None else self.sockaddr(sock, address)
        first, first_len = (cbufs[0], len(cbufs[0])) if cbufs else (ffi.NULL, 0)
        more, nmore = self._more(cbufs)
        fn = self._function(sock, fd, 1)
        cname = ffi.from_buffer(name) if name else ffi.NULL
        deadline = None
        while True:
            sent = self.lib.pm_send(fn, fd, first, first_len, more, nmore, cname, len(name), control, controllen, flags)
            if sent >= 0:
                return int(sent)
            deadline = self._recover(sock, fd, int(-sent), deadline, write=True)

    def sendmsg_batch(self, sock: socket.socket, datagrams: list[tuple[Any, Any, list[Any]]], flags: int = 0) -> int:
        """Send (data, address, ancdata) datagrams in one call (sendmmsg) or a loop; return how many went.

        A count below len(datagrams) means the OS took only those (for
        example a full non-blocking send buffer); the rest were not sent.
        """
        ffi = self.ffi
        if type(flags) is not int:
            flags = _index(flags)
        if not 0 < len(datagrams) <= MAX_BATCH:
            msg = f"datagrams: send between 1 and {MAX_BATCH} at once, not {len(datagrams)}"
            raise ValueError(msg)
        fd = self._fd(sock)
        items = ffi.new("pm_send_item[]", len(datagrams))
        keep = []
        for i, (data, address, ancdata) in enumerate(datagrams):
            cdata = self._readable(data)
            control, controllen = self._send_control(list(ancdata))
            name = b"" if address is None else self.sockaddr(sock, address)
            cname = ffi.from_buffer(name) if name else ffi.NULL
            keep.append((cdata, control, cname))
            items[i].data = cdata
            items[i].datalen = len(cdata)
            items[i].name = cname
            items[i].namelen = len(name)
            items[i].control = control
            items[i].controllen = controllen
        fn = self._function(sock, fd, 1)
        deadline = None
        while True:
            sent = int(self.lib.pm_send_batch(fn, fd, items, len(datagrams), flags))
            if sent >= 0:
                return sent
            deadline = self._recover(sock, fd, -sent, deadline, write=True)

    def _readable(self, item: object) -> Any:
        try:
            return self.ffi.from_buffer(item)
        except TypeError:
            msg = f"a bytes-like object is required, not '{type(item).__name__}'"
            raise TypeError(msg) from None

    def _send_control(self, ancdata: list[Any]) -> tuple[Any, int]:
        """encode_control, refused where the OS would drop control data on send (Wine)."""
        control, controllen = self.encode_control(ancdata)
        if controllen and self._send_controls_refused:
            msg = f"{self._send_controls_refused}; nothing was sent"
            raise OSError(errno.EOPNOTSUPP, msg)
        return control, controllen

    def encode_control(self, ancdata: list[Any]) -> tuple[Any, int]:
        """Lay out (level, type, data) items as a native control buffer."""
        ffi = self.ffi
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
            payload = _bytes(data)
            records[RECORD * i] = _index(level)
            records[RECORD * i + 1] = _index(kind)
            records[RECORD * i + 2] = offset
            records[RECORD * i + 3] = len(payload)
            payloads.append(payload)
            offset += len(payload)
            total += self.cmsg_space(len(payload))
        blob = b"".join(payloads)
        control = ffi.new("char[]", total)
        used = self.lib.pm_encode(records, n, ffi.from_buffer(blob), control, total)
        if used != total:  # cannot happen: total is the sum of CMSG_SPACEs
            msg = "ancillary data does not fit"
            raise OSError(errno.EINVAL, msg)
        return control, total
