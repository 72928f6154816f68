"""Receive buffers: sets preset in a pm_recv_args, reused from call to call, kept in free lists.

Batch sets are bounded per size class (and large ones dropped); a one-datagram
set keeps its size until its next call, which shrinks it when it had grown
beyond KEEP_BYTES (its untouched pages are address space, not memory).
A set is taken for one call and given back after it; list.pop and
list.append are atomic (also on free-threaded builds), so two threads, or a
signal handler inside a receive, never share one.
"""

from __future__ import annotations

import itertools
import struct
from typing import Any

from ._report import HEADER, RECORD, records_room

__all__ = ["KEEP_BYTES", "KEEP_SETS", "BatchIndex", "Scratch", "Scratches"]

KEEP_BYTES = 4 << 20
"""A batch set whose buffers grew beyond this is dropped after its call; a one-datagram set is shrunk
at its next call that asks for less."""
KEEP_SETS = 2
"""Free batch sets kept per size class."""


def _size_class(count: int) -> int:
    """The slots of the batch sets that serve `count` datagrams: count rounded up to a power of two."""
    return 1 << (count - 1).bit_length()


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
        "index",
        "kept",
        "last_address",
        "last_control",
        "last_controls",
        "last_flags",
        "last_message",
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
        self.index: BatchIndex | None = None
        self.kept = True  # a batch set small enough to go back to its free list after its call
        # The objects built for the last datagram, reused when the C side
        # reports the same sender / control bytes (PM_SAME_*).
        self.last_address: Any = None
        self.last_control = b""
        # And what it decoded them to (Controls and MsgFlag, or Level-1 items and the native flags),
        # reused whole when pm_recv1 reports that sender, control bytes and flags all repeat.
        self.last_controls: Any = None
        self.last_flags: Any = None
        self.last_message: Any = None  # a bound recv_into's last Message (its data is b"")
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


class BatchIndex:
    """A batch set's pm_batch_index (portmsg.h) and the objects Python built for its table slots.

    `peers[slot]` is the decoded sender of a peer slot; `flags[slot]` and `controls[slot]` the
    MsgFlag and Controls of a control slot: decoded once, when the C side lists the slot as
    fresh, and reused while it holds the same bytes.  `peer_repeats[slot]` and
    `control_repeats[slot]` give the same objects as endless itertools.repeat iterators, for a
    call whose datagrams all share one slot (stateless: any number of calls may use one at once).
    """

    __slots__ = (
        "_clear",
        "_ffi",
        "c",
        "control_of",
        "control_repeats",
        "control_tables",
        "controls",
        "flags",
        "format_bytes",
        "formatlen_at",
        "fresh",
        "meta",
        "nfresh_at",
        "peer_of",
        "peer_repeats",
        "peers",
        "tables",
        "unpack",
    )

    def __init__(self, ffi: Any, lib: Any, args: Any, slots: int, constants: dict[str, int]) -> None:
        peer_slots, control_slots = constants["PM_PEER_SLOTS"], constants["PM_CONTROL_SLOTS"]
        self._ffi = ffi
        self._clear = lib.pm_index_clear
        self.c = c = ffi.new("pm_batch_index *")
        c.args = args
        c.last_peer = c.last_control = -1
        new = ffi.new
        # Kept alive here: c points into them.
        self.tables: list[Any] = [
            new("char[]", peer_slots * args.namelen),
            new("long long[]", [-1] * peer_slots),
            new("int[]", peer_slots),
            new("long long[]", control_slots),  # control_flags
            new("int[]", control_slots),
        ]
        c.peers, c.peer_len, c.peer_stamp, c.control_flags, c.control_stamp = self.tables
        peer_of, control_of = new("long long[]", slots), new("long long[]", slots)
        fresh, room = new("long long[]", 6 * slots), constants["PM_FORMAT_ROOM"] * slots
        fmt, prev_fmt = new("char[]", room), new("char[]", room)
        self.tables += [peer_of, control_of, fresh, fmt, prev_fmt]
        c.peer_of, c.control_of, c.fresh, c.format, c.prev_format = peer_of, control_of, fresh, fmt, prev_fmt
        c.prev_formatlen = -1
        self.peer_of = memoryview(ffi.buffer(peer_of)).cast("q")
        self.control_of = memoryview(ffi.buffer(control_of)).cast("q")
        self.fresh = memoryview(ffi.buffer(fresh)).cast("q")
        self.format_bytes = ffi.buffer(fmt)
        self.meta = memoryview(ffi.buffer(c)).cast("i")
        self.nfresh_at = ffi.offsetof("pm_batch_index", "nfresh") // 4
        self.formatlen_at = ffi.offsetof("pm_batch_index", "formatlen") // 4
        self.peers: list[Any] = [None] * peer_slots
        self.peer_repeats: list[Any] = [None] * peer_slots
        self.flags: list[Any] = [None] * control_slots
        self.controls: list[Any] = [None] * control_slots
        self.control_repeats: list[Any] = [None] * control_slots
        self.control_tables: list[Any] = []
        self.unpack: Any = None
        """The last call's payload format, compiled: its unpack_from, reused while PM_INDEX_SAME_FORMAT says so."""

    def unpacker(self) -> Any:
        """The unpack_from of this call's payload format, kept for the calls after."""
        self.unpack = None  # until the new one stands: C compares with this call's format from here on
        unpack = struct.Struct(self.format_bytes[: self.meta[self.formatlen_at]]).unpack_from
        self.unpack = unpack
        return unpack

    def set_peer(self, slot: int, address: Any) -> None:
        """The decoded sender of a fresh peer slot."""
        self.peers[slot], self.peer_repeats[slot] = address, itertools.repeat(address)

    def set_control(self, slot: int, flags: Any, controls: Any) -> None:
        """The decoded flags and controls of a fresh control slot."""
        self.flags[slot], self.controls[slot] = flags, controls
        self.control_repeats[slot] = (itertools.repeat(flags), itertools.repeat(controls))

    def clear(self) -> None:
        """Empty every slot (and forget the last format): the C side lists each again as fresh."""
        self._clear(self.c)

    def fit_controls(self, room: int) -> None:
        """New control slots of `room` bytes each, all empty (the control buffers changed size)."""
        c, new, slots = self.c, self._ffi.new, len(self.controls)
        tables = [new("char[]", slots * max(room, 1)), new("long long[]", [-1] * slots)]
        self.control_tables = tables
        c.controls, c.control_len = tables
        c.last_control = -1


class Scratches:
    """New Scratch sets, and free lists of batch sets, one per power-of-two batch size.

    One-datagram sets live in each receive closure's own free list (_glue.receiver).

    Args:
        ffi: the compiled module's FFI.
        lib: the compiled module (its pm_event_new gives each set the event Windows waits on).
        constants: the compiled module's constants (sockaddr_storage's size, recvmmsg's vector size,
            the batch index's table sizes).
        cmsg_header: CMSG_LEN(0), the smallest control message.

    """

    def __init__(self, ffi: Any, lib: Any, constants: dict[str, int], cmsg_header: int) -> None:
        self._ffi = ffi
        self._lib = lib
        # C writes every byte before Python reads it (the report says how many): no need to zero.
        self._alloc = ffi.new_allocator(should_clear_after_alloc=False)
        # Except the control slots: the kernel leaves the padding after a short payload (a 12-byte
        # in_pktinfo) untouched, and C compares whole slots with the previous datagram's (PM_SAME_CONTROL):
        # garbage there would make the comparison miss at random.  Zeroed once, when allocated.
        self._zeroed = ffi.new_allocator(should_clear_after_alloc=True)
        self._constants = constants
        self._name_size = constants["PM_SIZEOF_SOCKADDR_STORAGE"]
        self._cmsg_header = cmsg_header
        self._vector_size = constants.get("PM_BATCH_VECTOR_SIZE", 0)
        self._batches: dict[int, list[Scratch]] = {}  # by size class
        self.free_batches: dict[int, list[Scratch]] = {}
        """The free list of each batch count's size class (filled by free_list)."""

    def free_list(self, count: int) -> list[Scratch]:
        """The free list of the size class of `count` datagrams: free_batches[count], made on first use.

        A receive pops its set from it (or makes one: new_batch) and appends it
        back after its call while the list holds fewer than KEEP_SETS and the
        set is `kept`.
        """
        free = self._batches.setdefault(_size_class(count), [])
        self.free_batches[count] = free
        return free

    def new_batch(self, count: int) -> Scratch:
        """A fresh batch set for `count` datagrams (rounded up to a power of two)."""
        return self.new(_size_class(count), batch=True)

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
        if batch:
            st.index = BatchIndex(self._ffi, self._lib, args, slots, self._constants)
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
            if st.index is not None:  # its control slots are laid out by controllen
                st.index.fit_controls(ancbufsize)
        st.kept = (st.data_size + st.control_size) * slots <= KEEP_BYTES

    @staticmethod
    def forget(st: Scratch) -> None:
        """Make the C side compare afresh: after an error the last_* objects may not match its copies."""
        st.args.prev_namelen = -1
        st.args.prev_controllen = -1
        if st.index is not None:
            st.index.c.last_peer = st.index.c.last_control = -1
