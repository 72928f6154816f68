"""Receive buffers: sets preset in a pm_recv_args, reused from call to call, kept in free lists.

Batch sets are bounded per size class (and large ones dropped); a one-datagram
set keeps its size until its next call, which shrinks it when it had grown
beyond KEEP_BYTES (its untouched pages are address space, not memory).
A set is taken for one call and given back after it; list.pop and
list.append are atomic (also on free-threaded builds), so two threads, or a
signal handler inside a receive, never share one.
"""

from __future__ import annotations

import collections
from typing import Any

from ._report import HEADER, RECORD, records_room

__all__ = ["KEEP_BYTES", "Scratch", "Scratches"]

KEEP_BYTES = 4 << 20
"""A batch set whose buffers grew beyond this is dropped after its call; a one-datagram set is shrunk
at its next call that asks for less."""
_KEEP_SETS = 2
"""Free batch sets kept per size class."""


class Scratch:
    """One set of receive buffers for `slots` datagrams, preset in `args` (a pm_recv_args *)."""

    __slots__ = (
        "ancbufsize_key",
        "args",
        "bufsize_key",
        "control",
        "control_bytes",
        "control_size",
        "controllen",
        "data",
        "data_bytes",
        "data_size",
        "datalen",
        "event",
        "fd",
        "flags_key",
        "head",
        "head_view",
        "last_address",
        "last_control",
        "name",
        "name_bytes",
        "prev_control",
        "prev_name",
        "records",
        "records_view",
        "slots",
        "vectors",
    )

    def __init__(self, args: Any, slots: int) -> None:
        self.args = args
        self.slots = slots
        empty = memoryview(b"")
        # *_bytes are cffi buffers over the C arrays: slicing one gives a bytes object in one step.
        self.data: Any = None
        self.name: Any = None
        self.control: Any = None
        self.records: Any = None
        self.head: Any = None
        self.prev_name: Any = None
        self.prev_control: Any = None
        self.vectors: Any = None
        self.event: Any = None
        # The objects built for the last datagram, reused when the C side
        # reports the same sender / control bytes (PM_SAME_*).
        self.last_address: Any = None
        self.last_control = b""
        self.data_bytes = self.name_bytes = self.control_bytes = b""
        self.records_view = self.head_view = empty
        # Allocated sizes (-1: nothing yet) and the sizes preset in args.
        self.data_size = self.control_size = self.datalen = self.controllen = -1
        # The very size objects the last flat receive validated and fitted (see _glue.receiver).
        self.bufsize_key: object = None
        self.ancbufsize_key: object = None
        # The socket and flags preset in args for pm_recv1 (-1: none yet), and the flags object they came from.
        self.fd = -1
        self.flags_key: object = None


class Scratches:
    """Free lists of Scratch sets: `single` for one-datagram receives, one per power-of-two batch size.

    Args:
        ffi: the compiled module's FFI.
        lib: the compiled module (its pm_event_new gives each set the event Windows waits on).
        name_size: sizeof(struct sockaddr_storage).
        cmsg_header: CMSG_LEN(0), the smallest control message.
        vector_size: bytes of per-datagram vectors recvmmsg needs (0: none).

    """

    def __init__(self, ffi: Any, lib: Any, name_size: int, cmsg_header: int, vector_size: int) -> None:
        self._ffi = ffi
        self._lib = lib
        # C writes every byte before Python reads it (the report says how many): no need to zero.
        self._alloc = ffi.new_allocator(should_clear_after_alloc=False)
        # Except the control slots: the kernel leaves the padding after a short payload (a 12-byte
        # in_pktinfo) untouched, and C compares whole slots with the previous datagram's (PM_SAME_CONTROL):
        # garbage there would make the comparison miss at random.  Zeroed once, when allocated.
        self._zeroed = ffi.new_allocator(should_clear_after_alloc=True)
        self._name_size = name_size
        self._cmsg_header = cmsg_header
        self._vector_size = vector_size
        self.single: collections.deque[Scratch] = collections.deque()
        """Free one-datagram sets; the hot paths pop and append here themselves (a deque: a list would
        reallocate on every pop and append of its one item, about 480 instructions a receive)."""
        self._batches: dict[int, collections.deque[Scratch]] = {}

    def new(self, slots: int = 1, *, batch: bool = False) -> Scratch:
        """A fresh set for `slots` datagrams (of one batch call), with no data or control buffers yet (see fit)."""
        alloc = self._alloc
        st = Scratch(self._ffi.new("pm_recv_args *"), slots)
        args = st.args
        st.name = alloc("char[]", self._name_size * slots)
        st.name_bytes = self._ffi.buffer(st.name)
        args.name = st.name
        args.namelen = self._name_size
        st.head = alloc("long long[]", HEADER * slots)
        st.head_view = memoryview(self._ffi.buffer(st.head)).cast("q")
        args.head = st.head
        st.prev_name = alloc("char[]", self._name_size)
        args.prev_name = st.prev_name
        event = self._lib.pm_event_new()
        if event != self._ffi.NULL:  # Windows; freed with the set
            st.event = self._ffi.gc(event, self._lib.pm_event_free)
            args.event = st.event
        if batch and self._vector_size:
            st.vectors = alloc("char[]", self._vector_size * slots)
            args.vectors = st.vectors
            args.nvectors = slots
        self.forget(st)
        return st

    def fit(self, st: Scratch, bufsize: int, ancbufsize: int) -> None:
        """Preset st for `bufsize` data and `ancbufsize` control bytes per datagram, growing as needed."""
        args, slots, alloc = st.args, st.slots, self._alloc
        st.bufsize_key = st.ancbufsize_key = None
        if bufsize > st.data_size or (st.data_size > KEEP_BYTES >= bufsize):
            st.data = alloc("char[]", max(bufsize, 1) * slots)
            st.data_bytes = self._ffi.buffer(st.data)
            st.data_size = bufsize
            args.data = st.data
        if bufsize != st.datalen:
            args.datalen = st.datalen = bufsize
        if ancbufsize > st.control_size or (st.control_size > KEEP_BYTES >= ancbufsize):
            room = records_room(ancbufsize, self._cmsg_header)
            st.control = self._zeroed("char[]", max(ancbufsize, 1) * slots)
            st.control_bytes = self._ffi.buffer(st.control)
            st.records = alloc("long long[]", RECORD * room * slots)
            st.records_view = memoryview(self._ffi.buffer(st.records)).cast("q")
            st.prev_control = self._zeroed("char[]", max(ancbufsize, 1))
            st.control_size = ancbufsize
            args.control = st.control
            args.records = st.records
            args.prev_control = st.prev_control
            args.prev_controllen = -1
        if ancbufsize != st.controllen:
            args.controllen = st.controllen = ancbufsize
            args.maxrecords = records_room(ancbufsize, self._cmsg_header)
            args.prev_controllen = -1

    def take_batch(self, count: int, bufsize: int, ancbufsize: int) -> Scratch:
        """A free set with room for `count` datagrams (rounded up to a power of two), fitted."""
        slots = 1 << (count - 1).bit_length()
        try:
            st = self._batches[slots].pop()
        except (KeyError, IndexError):
            st = self.new(slots, batch=True)
        if bufsize != st.datalen or ancbufsize != st.controllen:
            self.fit(st, bufsize, ancbufsize)
        return st

    def give_batch(self, st: Scratch) -> None:
        """Keep st for a later batch unless its class is full or its buffers are large."""
        try:
            free = self._batches[st.slots]
        except KeyError:
            free = self._batches[st.slots] = collections.deque()
        if len(free) < _KEEP_SETS and (st.data_size + st.control_size) * st.slots <= KEEP_BYTES:
            free.append(st)

    @staticmethod
    def forget(st: Scratch) -> None:
        """Make the C side compare afresh: after an error the last_* objects may not match its copies."""
        st.args.prev_namelen = -1
        st.args.prev_controllen = -1
