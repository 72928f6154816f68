"""The receive side of both compiled backends: one C call per datagram (or batch), decoded in Python.

`CffiBackend` wires the shared parts around one compiled module (buffers:
_scratch.py, waiting: _wait.py, addresses: _sockaddr.py, sending:
_send.py, decoding: _normalize.py) and holds the receive entry points.
What differs per OS comes in as an `OsHooks` (_hooks.py); this module never
imports a compiled module.
"""

from __future__ import annotations

import _socket
import collections
import contextlib
import functools
import itertools
import operator
import os
import socket
import struct
import sys
import threading
from typing import TYPE_CHECKING, Any

from . import _args
from ._normalize import Normalizer
from ._report import (
    FRESH,
    HEADER,
    INDEX_CONTROL_SHIFT,
    INDEX_CONTROLS,
    INDEX_COUNT,
    INDEX_FRESH,
    INDEX_MIXED,
    INDEX_PEER_SHIFT,
    INDEX_PEERS,
    INDEX_SAME_FORMAT,
    RECORD,
    SAME_CONTROL,
    SAME_NAME,
    check,
    items,
    records_room,
)
from ._scratch import KEEP_SETS, BatchIndex, Scratches
from ._send import Sender, buffer_array
from ._sockaddr import SockaddrCodec
from ._types import NO_CONTROLS, Message
from ._wait import Waiter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from ._hooks import OsHooks
    from ._report import NativeControl
    from ._scratch import Scratch

__all__ = ["CffiBackend", "Level1Result", "RecvIntoResult", "read_constants"]

Level1Result = tuple[bytes, list["NativeControl"], int, Any]
RecvIntoResult = tuple[int, list["NativeControl"], int, Any]
_SOCKET = socket.socket
_STREAM = int(socket.SOCK_STREAM)
_type = _socket.socket.type.__get__
_new_tuple = tuple.__new__  # Message(...) without its __new__ frame
_SOCKLEN_MAX = 0x7FFFFFFF  # CPython's SOCKLEN_T_LIMIT
_LEVEL1_CACHE_SIZE = 256  # distinct control byte strings whose Level-1 items are kept
_BOUND = "a Receiver's recv() is for the thread that made it, one call at a time (make one per thread)"
_INDEX_MANY = INDEX_PEERS | INDEX_CONTROLS
_MESSAGES = itertools.repeat(Message)  # endless, stateless: map stops with its other iterator


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


def _cmsg_size(func: Any, length: int, limit: int, what: str) -> int:
    length = operator.index(length)
    if not -sys.maxsize - 1 <= length <= sys.maxsize:  # CPython parses it as a Py_ssize_t first
        msg = "Python int too large to convert to C ssize_t"
        raise OverflowError(msg)
    if 0 <= length <= limit:
        result = int(func(length))
        if length <= result <= _SOCKLEN_MAX:
            return result
    msg = f"{what}() argument out of range"
    raise OverflowError(msg)


def _close_fds(rights: tuple[int, int] | None, ancdata: Iterable[NativeControl]) -> None:
    if rights is None:
        return
    for level, kind, data in ancdata:
        if (level, kind) == rights:
            for (fd,) in struct.iter_unpack("=i", data[: len(data) - len(data) % 4]):
                with contextlib.suppress(OSError):
                    os.close(fd)


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
        self.normalizer = Normalizer(c, perf_frequency=hooks.perf_frequency)
        # The error queue where the OS has one and portmsg decodes its reports (Linux: Windows'
        # headers name MSG_ERRQUEUE and IP_RECVERR too, but document no such queue for UDP).
        self.errqueue = c.get("MSG_ERRQUEUE", 0) if "PM_EXTENDED_ERR_SIZE" in c else 0
        self.recv_flags = c.get("MSG_CMSG_CLOEXEC", 0)
        """Input flags every Level-2 receive passes: descriptors received get FD_CLOEXEC atomically."""
        self.waiter = Waiter(
            hooks, _timeval(c) if hooks.dontwait else None, self.queued_error if self.errqueue else None
        )
        self.sender = Sender(ffi, lib, hooks, self.codec, self.normalizer, self.waiter)
        self._cmsg_header = int(lib.pm_cmsg_len(0))
        self.scratches = Scratches(ffi, lib, c, self._cmsg_header)
        self._rights = (c["SOL_SOCKET"], c["SCM_RIGHTS"]) if "SCM_RIGHTS" in c else None
        self._level1_cache: dict[bytes, tuple[NativeControl, ...]] = {}
        # The hot paths read these as attributes of self, bound once here.
        self._dontwait = hooks.dontwait
        self._plain_socket = _SOCKET if hooks.plain else None
        self._errqueue = self.constants.get("MSG_ERRQUEUE", 0)
        self._fit = self.scratches.fit
        self._address = self.codec.decode
        self._flags_seen = self.normalizer.flags_seen
        self._control_sets = self.normalizer.control_sets
        self._message = self.normalizer.message
        self._pm_recv = lib.pm_recv
        self._pm_recv_into = lib.pm_recv_into
        self._pm_recv_batch = lib.pm_recv_batch
        self._pm_recv_indexed = lib.pm_recv_indexed
        self._unpack = ffi.unpack
        self._take_error: Callable[..., Message] | None = None
        self.receive_batch = self.batch_receiver()
        """receive_batch(sock, count, bufsize, ancbufsize, flags): up to count datagrams in one call."""

    # -- control-message sizes ---------------------------------------------------------

    def cmsg_len(self, length: int) -> int:
        """CMSG_LEN / WSA_CMSG_LEN, with CPython's range check (get_CMSG_LEN)."""
        return _cmsg_size(self.lib.pm_cmsg_len, length, _SOCKLEN_MAX - self._cmsg_header, "CMSG_LEN")

    def cmsg_space(self, length: int) -> int:
        """CMSG_SPACE / WSA_CMSG_SPACE, with CPython's range check (get_CMSG_SPACE: room for padding both sides)."""
        limit = _SOCKLEN_MAX - int(self.lib.pm_cmsg_space(1))
        return _cmsg_size(self.lib.pm_cmsg_space, length, limit, "CMSG_SPACE")

    # -- receive ---------------------------------------------------------------------
    #
    # A receive is one flat Python frame: the C call, then the datagram's
    # objects, reusing the sender address / control bytes the C side reports
    # unchanged (PM_SAME_*) and decoded results the normalizer has seen
    # before.  Only a miss or a failure calls out (_message, _level1_items,
    # _checked, _receive_checked): every Python call saved here is a few
    # percent of a loopback receive.

    def receiver(self, *, level1: bool, into: bool = False) -> Callable[..., Any]:  # noqa: C901, PLR0915
        """The flat receive: f(sock, bufsize, ancbufsize=0, flags=0, /).

        Returns recvmsg's tuple (level1) or a Message.  With `into`, the
        second argument is the caller's buffers instead of a size, as
        (first, its length, pm_buf array of the others or NULL, their count)
        of cffi views: the data goes there, and f returns (nbytes, result
        whose data is b"").  Built once per shape, as a closure: its state is
        in local cells, the cheapest names Python has, and recvmsg needs no
        frame around it.
        """
        # Sets of this shape only: the objects a set keeps from its last datagram (st.last_*) are this shape's.
        pool: collections.deque[Scratch] = collections.deque()
        new_scratch, pm_recv1, pm_recv_into = (
            self.scratches.new,
            self.lib.pm_recv1,
            self._pm_recv_into,
        )
        plain_socket = _SOCKET if self.hooks.plain else None
        dontwait, address_of, checked, sizes, fit = (
            self._dontwait,
            self._address,
            self._receive_checked,
            self._sizes,
            self._fit,
        )
        flags_seen, control_sets, message, level1_cache, level1_items = (
            self._flags_seen,
            self._control_sets,
            self._message,
            self._level1_cache,
            self._level1_items,
        )
        discard, forget, caller, null = (
            self._discard,
            self.scratches.forget,
            "recvmsg" if level1 else "recv",
            self.ffi.NULL,
        )

        def receive(sock: Any, bufsize: Any, ancbufsize: int = 0, flags: int = 0, /) -> Any:  # noqa: C901, PLR0912, PLR0915
            try:
                st = pool.pop()
            except IndexError:
                st = new_scratch()
            args = st.args
            try:
                if into:
                    first, length, more, nmore = bufsize
                    if ancbufsize != st.controllen:
                        fit(st, max(st.datalen, 0), ancbufsize)
                    args.more, args.nmore = more, nmore
                # The sizes validated last time are these very objects: nothing to check or fit.
                elif bufsize is not st.bufsize_key or ancbufsize is not st.ancbufsize_key or type(flags) is not int:
                    bufsize, ancbufsize, flags = sizes(sock, st, bufsize, ancbufsize, flags, caller)
                if type(sock) is not plain_socket:
                    n = checked(sock, args, flags, into=bufsize if into else None)
                elif into:
                    n = pm_recv_into(sock.fileno(), flags | dontwait, args, first, length)
                    if n < 0:
                        n = checked(sock, args, flags, into=bufsize, failed=-n)
                else:
                    # One argument: the socket and flags stay in args while they are the same (one
                    # pointer converted instead of three arguments: hundreds of instructions a call).
                    fd = sock.fileno()
                    if fd != st.fd or flags is not st.flags_key:
                        args.fd, args.flags = fd, flags | dontwait
                        st.fd, st.flags_key = fd, flags
                    n = pm_recv1(args)
                    if n >= 0:  # the datagram before's sender, controls and flags: nothing to decode
                        data = st.data_bytes[:n]
                        if level1:
                            return (data, list(st.last_controls), st.last_flags, st.last_address)
                        return _new_tuple(Message, (data, st.last_address, st.last_flags, st.last_controls))
                    n = st.head_view[4] if n == FRESH else checked(sock, args, flags, failed=-n)
                h = st.head_view
                same = h[5]
                if same & SAME_CONTROL:
                    control = st.last_control
                else:
                    control = st.last_control = st.control_bytes[: h[3]]
                try:
                    if into:
                        data = b""
                    else:
                        nbytes = h[0]
                        # With MSG_TRUNC as input Linux returns the full length: clip it, as CPython does.
                        data = st.data_bytes[: nbytes if nbytes < bufsize else bufsize]  # noqa: FURB136 - min() costs a call
                    if not same & SAME_NAME:
                        st.last_address = address_of(st.name_bytes[: h[2]])
                    # Subscripts, not dict.get: on free-threaded 3.13 a get() of a key another thread
                    # stored spins on the dict's lock (newcomer-2026-12-02, A5); d[k] takes it once.
                    if level1:
                        try:
                            items = level1_cache[control] if n else ()
                        except KeyError:
                            items = level1_items(control, st.records_view, 0, n)
                        result: Any = (data, list(items), h[1], st.last_address)
                        st.last_flags, st.last_controls = h[1], items
                    else:
                        try:
                            controls = control_sets[control] if n else NO_CONTROLS
                            result = _new_tuple(Message, (data, st.last_address, flags_seen[h[1]], controls))
                        except KeyError:
                            result = message(data, st.last_address, h[1], control, st.records_view, 0, n)
                        st.last_flags, st.last_controls = result[2], result[3]
                except BaseException:
                    discard(st, [(control, st.records_view, 0, n)])
                    raise
                return (h[0], result) if into else result
            except BaseException as exc:
                if not isinstance(exc, OSError):
                    forget(st)  # interrupted (a signal): C may have taken a datagram whose objects were never kept
                raise
            finally:
                if into:
                    args.more, args.nmore = null, 0
                pool.append(st)

        return receive

    def bound_receive(self, sock: Any, bufsize: int, ancbufsize: int, into: Any = None) -> Callable[[], Any]:  # noqa: C901 - two flat closures
        """recv() for one socket, bound to the calling thread: a set of its own, fd and flags preset in C.

        With `into` (a cffi view of the caller's buffer), recv_into(): the data goes there and
        it returns (nbytes, Message with empty data), the very Message of the datagram before
        when that one's sender, controls and flags repeat.  The one-argument path where
        receives take it (POSIX, a socket.socket); elsewhere the shared receive with these
        sizes, under the same rule: RuntimeError when called from another thread, or again
        from inside itself (a signal handler).
        """
        if type(sock) is not self._plain_socket:
            return self._bound_shared(sock, bufsize, ancbufsize, into)
        owner, get_ident = threading.get_ident(), threading.get_ident
        busy = [False]
        st = self.scratches.new()
        self._fit(st, 0 if into is not None else bufsize, ancbufsize)
        args, data_bytes, head = st.args, st.data_bytes, st.head_view
        if into is not None:  # the caller's buffer is the data buffer (kept exported while the set lives)
            args.data, args.datalen = into, len(into)
            bufsize = len(into)
            st.data, st.datalen = into, bufsize
        args.flags = self.recv_flags | self._dontwait
        pm_recv1, decode, forget = self.lib.pm_recv1, self._decode_one, self.scratches.forget

        def recv() -> Message:
            if get_ident() != owner or busy[0]:
                raise RuntimeError(_BOUND)
            busy[0] = True
            try:
                fd = sock.fileno()
                if fd != st.fd:
                    args.fd = st.fd = fd
                n = pm_recv1(args)
                if n >= 0:  # the datagram before's sender, controls and flags
                    return _new_tuple(Message, (data_bytes[:n], st.last_address, st.last_flags, st.last_controls))
                return decode(sock, st, head[4] if n == FRESH else -n, bufsize, failed=n != FRESH)
            except BaseException as exc:
                if not isinstance(exc, OSError):
                    forget(st)  # interrupted (a signal): C may have taken a datagram whose objects were never kept
                raise
            finally:
                busy[0] = False

        def recv_into() -> tuple[int, Message]:
            if get_ident() != owner or busy[0]:
                raise RuntimeError(_BOUND)
            busy[0] = True
            try:
                fd = sock.fileno()
                if fd != st.fd:
                    args.fd = st.fd = fd
                n = pm_recv1(args)
                if n >= 0:
                    return n, st.last_message
                message = decode(sock, st, head[4] if n == FRESH else -n, bufsize, failed=n != FRESH, into=True)
                st.last_message = message
                return head[0], message
            except BaseException as exc:
                if not isinstance(exc, OSError):
                    forget(st)  # as in recv()
                raise
            finally:
                busy[0] = False

        return recv if into is None else recv_into

    def _bound_shared(self, sock: Any, bufsize: int, ancbufsize: int, into: Any) -> Callable[[], Any]:
        """bound_receive where receives take no one-argument path: the shared receive, under the thread rule."""
        owner, get_ident = threading.get_ident(), threading.get_ident
        busy = [False]
        shape = self.receiver(level1=False, into=into is not None)
        what = bufsize if into is None else (into, len(into), self.ffi.NULL, 0)
        shared = functools.partial(shape, sock, what, ancbufsize, self.recv_flags)

        def recv_shared() -> Any:
            if get_ident() != owner or busy[0]:
                raise RuntimeError(_BOUND)
            busy[0] = True
            try:
                return shared()
            finally:
                busy[0] = False

        return recv_shared

    def _decode_one(self, sock: Any, st: Scratch, n: int, bufsize: int, *, failed: bool, into: bool = False) -> Message:
        """A bound receive's datagram when it does not repeat the one before (or failed: n is the error code)."""
        args = st.args
        if failed:
            n = self._receive_checked(sock, args, self.recv_flags, failed=n)
        h = st.head_view
        control = st.last_control = st.control_bytes[: h[3]]
        try:
            nbytes = h[0]
            data = b"" if into else st.data_bytes[: nbytes if nbytes < bufsize else bufsize]  # noqa: FURB136
            if not h[5] & SAME_NAME:
                st.last_address = self._address(st.name_bytes[: h[2]])
            try:
                controls = self._control_sets[control] if n else NO_CONTROLS
                result = _new_tuple(Message, (data, st.last_address, self._flags_seen[h[1]], controls))
            except KeyError:
                result = self._message(data, st.last_address, h[1], control, st.records_view, 0, n)
        except BaseException:
            self._discard(st, [(control, st.records_view, 0, n)])
            raise
        st.last_flags, st.last_controls = result[2], result[3]
        return result

    def _sizes(
        self, sock: Any, st: Scratch, bufsize: Any, ancbufsize: Any, flags: Any, caller: str
    ) -> tuple[int, int, int]:
        """Check the arguments in the stdlib's order and fit st to them; remember them for the identity check."""
        _args.sock_of(sock)
        bufsize, ancbufsize, flags = _args.ssize(bufsize), _args.ssize(ancbufsize), _args.c_int(flags)
        if bufsize < 0:
            msg = f"negative buffer size in {caller}()"
            raise ValueError(msg)
        if ancbufsize < 0:
            msg = "invalid ancillary data buffer length"
            raise ValueError(msg)
        if bufsize != st.datalen or ancbufsize != st.controllen:
            self._fit(st, bufsize, ancbufsize)
        st.bufsize_key, st.ancbufsize_key = bufsize, ancbufsize
        return bufsize, ancbufsize, flags

    def buffers(self, cbufs: list[Any]) -> tuple[Any, int, Any, int]:
        """The caller's cffi buffers as an `into` receiver takes them (see receiver)."""
        if not cbufs:
            return self.ffi.NULL, 0, self.ffi.NULL, 0
        more, nmore = buffer_array(self.ffi, cbufs[1:])
        return cbufs[0], len(cbufs[0]), more, nmore

    def batch_receiver(self) -> Callable[[Any, int, int, int, int], list[Message]]:  # noqa: C901, PLR0915
        """The batch receive: f(sock, count, bufsize, ancbufsize, flags) -> up to count Messages.

        Blocks for the first datagram only.  Built once, as a closure (see
        receiver): pm_recv_indexed, then the Messages built by C iterators,
        no Python per datagram: the payloads come out of one
        struct.unpack_from with the format the C side wrote, the sender and
        control objects out of the index's slot lists (decoded once, when a
        slot is fresh), or out of a slot's endless repeat where every datagram
        shares it (zip stops with the payloads).  On failure nothing is handed
        over (see messages).
        """
        free_batches, free_list, new_batch, fit = (
            self.scratches.free_batches,
            self.scratches.free_list,
            self.scratches.new_batch,
            self._fit,
        )
        plain_socket, dontwait, pm_recv_indexed, checked, decode_fresh, by_heads, discard, batch_controls = (
            self._plain_socket,
            self._dontwait,
            self._pm_recv_indexed,
            self._receive_checked,
            self._decode_fresh,
            self.messages,
            self._discard,
            self._batch_controls,
        )

        def receive_batch(sock: Any, count: int, bufsize: int, ancbufsize: int, flags: int) -> list[Message]:  # noqa: C901, PLR0912
            try:
                free = free_batches[count]
            except KeyError:
                free = free_list(count)
            try:
                st = free.pop()
            except IndexError:
                st = new_batch(count)
            if bufsize != st.datalen or ancbufsize != st.controllen:
                fit(st, bufsize, ancbufsize)
            x: Any = st.index
            r = -1  # no datagram yet
            try:
                if type(sock) is plain_socket:  # POSIX, a socket.socket: straight to C, checks on failure
                    r = pm_recv_indexed(sock.fileno(), flags | dontwait, count, x.c)
                    if r < 0:
                        r = checked(sock, st.args, flags, count=count, index=x, failed=-r)
                else:
                    r = checked(sock, st.args, flags, count=count, index=x)
                if r & INDEX_MIXED:
                    return by_heads(st, r & INDEX_COUNT, bufsize, ancbufsize)
                if r & INDEX_FRESH:
                    decode_fresh(st, x, ancbufsize)
                unpack = x.unpack if r & INDEX_SAME_FORMAT else x.unpacker()
                datas = unpack(st.data_bytes)
                # Endless where they can be: zip stops with the payloads.
                if not r & _INDEX_MANY:  # one sender, one control set: their slots are in r
                    addresses: Any = x.peer_repeats[r >> INDEX_PEER_SHIFT & 255]
                    flags_of, controls = x.control_repeats[r >> INDEX_CONTROL_SHIFT]
                else:
                    if r & INDEX_PEERS:
                        addresses = map(x.peers.__getitem__, x.peer_of)
                    else:
                        addresses = x.peer_repeats[r >> INDEX_PEER_SHIFT & 255]
                    if r & INDEX_CONTROLS:
                        flags_of = map(x.flags.__getitem__, x.control_of)
                        controls = map(x.controls.__getitem__, x.control_of)
                    else:
                        flags_of, controls = x.control_repeats[r >> INDEX_CONTROL_SHIFT]
                rows = zip(datas, addresses, flags_of, controls)  # noqa: B905 - a keyword costs an argument parse
                return list(map(_new_tuple, _MESSAGES, rows))
            except BaseException as exc:
                if r >= 0 and not r & INDEX_MIXED:  # past an indexed receive (by_heads discards its own)
                    x.clear()  # the slot lists may not match the C tables any more
                    discard(st, batch_controls(st, r & INDEX_COUNT, ancbufsize))
                elif not isinstance(exc, OSError):  # interrupted (a signal): C may have indexed a call never built
                    x.clear()
                raise
            finally:
                if st.kept and len(free) < KEEP_SETS:
                    free.append(st)

        return receive_batch

    def _decode_fresh(self, st: Scratch, x: BatchIndex, ancbufsize: int) -> None:
        """Decode the senders and control sets a call put in index slots of their own."""
        heads, fresh, records, nfresh = st.head_view, x.fresh, st.records_view, x.meta[x.nfresh_at]
        nameslot, controlslot = st.args.namelen, max(ancbufsize, 1)
        stride = RECORD * records_room(ancbufsize, self._cmsg_header)
        for j in range(0, 3 * nfresh, 3):
            slot, i = fresh[j + 1], fresh[j + 2]
            h = HEADER * i
            if fresh[j] == 0:
                start = i * nameslot
                x.set_peer(slot, self._address(st.name_bytes[start : start + heads[h + 2]]))
            else:
                start = i * controlslot
                control = st.control_bytes[start : start + heads[h + 3]]
                m = self._message(b"", None, heads[h + 1], control, records, i * stride, heads[h + 4])
                x.set_control(slot, m[2], m[3])

    def _batch_controls(self, st: Scratch, got: int, ancbufsize: int) -> list[tuple[bytes, Any, int, int]]:
        """Each datagram's (control bytes, records, base, count) of a batch in st, for _discard."""
        heads, control_bytes, controlslot = st.head_view, st.control_bytes, max(ancbufsize, 1)
        stride = RECORD * records_room(ancbufsize, self._cmsg_header)
        return [
            (
                control_bytes[j * controlslot : j * controlslot + heads[HEADER * j + 3]],
                st.records_view,
                j * stride,
                heads[HEADER * j + 4],
            )
            for j in range(got)
        ]

    def messages(self, st: Scratch, got: int, bufsize: int, ancbufsize: int) -> list[Message]:
        """The Messages of the `got` datagrams a C call reported into st (a batch, or one overlapped receive).

        On failure nothing is handed over: every datagram's descriptors are closed.
        """
        heads = self._unpack(st.head, HEADER * got)
        records, data_bytes, control_bytes, name_bytes = st.records_view, st.data_bytes, st.control_bytes, st.name_bytes
        dataslot, controlslot, nameslot = max(bufsize, 1), max(ancbufsize, 1), st.args.namelen
        stride = RECORD * records_room(ancbufsize, self._cmsg_header)
        address, control = st.last_address, st.last_control
        flags_seen, control_sets, address_of = self._flags_seen, self._control_sets, self._address
        messages: list[Message] = []
        append = messages.append
        try:
            for i in range(got):
                h = HEADER * i
                nbytes, same = heads[h], heads[h + 5]
                if not same & SAME_NAME:
                    start = i * nameslot
                    address = address_of(name_bytes[start : start + heads[h + 2]])
                if not same & SAME_CONTROL:
                    start = i * controlslot
                    control = control_bytes[start : start + heads[h + 3]]
                start = i * dataslot
                data = data_bytes[start : start + (nbytes if nbytes < bufsize else bufsize)]  # noqa: FURB136
                try:  # subscripts, not dict.get (see receiver)
                    controls = control_sets[control] if heads[h + 4] else NO_CONTROLS
                    append(_new_tuple(Message, (data, address, flags_seen[heads[h + 1]], controls)))
                except KeyError:
                    append(self._message(data, address, heads[h + 1], control, records, i * stride, heads[h + 4]))
        except BaseException:
            self._discard(st, self._batch_controls(st, got, ancbufsize))
            raise
        st.last_address, st.last_control = address, control
        return messages

    def _receive_checked(
        self,
        sock: Any,
        args: Any,
        flags: int,
        *,
        count: int = 0,
        index: BatchIndex | None = None,
        into: Any = None,
        failed: int = 0,
    ) -> int:
        """A receive with every check the fast path skips, retried and waited for.

        Args:
            sock: a socket, or a wrapper around one (see _args.sock_of).
            args: the preset pm_recv_args (its function pointer is set here on Windows).
            flags: the caller's input flags.
            count: datagrams of a batch (pm_recv_batch); 0 for one datagram.
            index: the batch set's index: the batch goes through pm_recv_indexed.
            into: the caller's buffers for pm_recv_into (see receiver); None: pm_recv.
            failed: the error code of a fast-path call already made, or 0.

        Returns:
            What the call returned: the records count, or the datagram count of a batch
            (with pm_recv_indexed's PM_INDEX_* bits, given an index).

        """
        sock = _args.sock_of(sock)
        flags = _args.c_int(flags)
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
        if hooks.functions is not None:  # Windows (two cdata writes: hundreds of instructions a call elsewhere)
            args.wait = sock.gettimeout() is None  # a blocking socket's receive waits in C (winsock.c)
            args.spare = _type(sock) != _STREAM  # exact truncation for datagrams; a stream's bytes stay put
        while True:
            if not code:
                if hooks.functions is not None:
                    args.fn = hooks.functions(sock, fd)[0]
                if index is not None:
                    n: int = self._pm_recv_indexed(fd, call_flags, count, index.c)
                elif count:
                    n = self._pm_recv_batch(fd, call_flags, count, args)
                elif into is not None:
                    n = self._pm_recv_into(fd, call_flags, args, into[0], into[1])
                else:
                    n = self._pm_recv(fd, call_flags, args)
                if n >= 0:
                    return n
                code = -n
            if flags & self._errqueue and code != hooks.eintr:
                raise hooks.error(code)  # reading the error queue never waits (an empty one: EAGAIN)
            fd, deadline = self.waiter.recover(sock, code, deadline, write=False, sliced=sliced)
            code = 0

    def queued_error(self, sock: socket.socket) -> OSError | None:
        """Take one error from the socket's error queue, as the OSError the stdlib would raise; None if none.

        The exception carries the whole report as `exc.queued` (the Message
        recv_error() gives).  Never waits.  Where the OS has no error queue, None.
        """
        if not self.errqueue:
            return None
        if self._take_error is None:
            self._take_error = self.receiver(level1=False)
        try:
            message = self._take_error(sock, 2048, 512, self.recv_flags | self.errqueue)
        except OSError:
            return None  # nothing queued (EAGAIN), or the socket is gone: the caller's own call says so
        error = message.error
        if error is None:
            return None  # a report portmsg does not decode (not an ICMP or local error)
        exc = self.hooks.error(error.errno)
        exc.queued = message  # type: ignore[attr-defined]
        return exc

    def _discard(self, st: Scratch, datagrams: list[tuple[bytes, Any, int, int]]) -> None:
        """After a failure past the receive: nothing was handed over, so close what the datagrams carried."""
        self.scratches.forget(st)
        for control, records, base, count in datagrams:
            self.close_fds(items(control, records, base, count))

    def _level1_items(self, control: bytes, records: Any, base: int, count: int) -> tuple[NativeControl, ...]:
        """A datagram's Level-1 (level, type, data) items, kept by control bytes for the next identical set."""
        try:
            cached: tuple[NativeControl, ...] | None = self._level1_cache[control]
        except KeyError:
            cached = None
        if cached is None:
            cached = tuple(items(control, records, base, count))
            if len(self._level1_cache) >= _LEVEL1_CACHE_SIZE:
                self._level1_cache.clear()
            self._level1_cache[control] = cached
        return cached

    def close_fds(self, ancdata: Iterable[NativeControl]) -> None:
        """Close every descriptor carried by SCM_RIGHTS items (for error paths)."""
        _close_fds(self._rights, ancdata)

    def disable_udp_resets(self, sock: Any) -> frozenset[str]:
        """Turn off the OS's ICMP-reset reporting on a UDP socket; return what was turned off."""
        sock = _args.sock_of(sock)
        fd = sock.fileno()
        if fd < 0:
            raise self.hooks.error(self.hooks.closed)
        hook = self.hooks.disable_udp_resets
        return frozenset() if hook is None else hook(fd)
