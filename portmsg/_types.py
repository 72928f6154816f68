"""The shared Python types: the same values on every platform.

Nothing here knows which OS it runs on; the normalizer (_normalize.py) turns
each platform's native control messages and flags into these.
"""

from __future__ import annotations

import contextlib
import enum
import os
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from collections.abc import Iterator
    from ipaddress import IPv4Address, IPv6Address
    from types import TracebackType

__all__ = [
    "ECN",
    "Control",
    "Credentials",
    "Feature",
    "FileDescriptors",
    "HopLimit",
    "Message",
    "MsgFlag",
    "PacketInfo",
    "RawControl",
    "SegmentSize",
    "Timestamp",
    "TrafficClass",
]


class MsgFlag(enum.IntFlag):
    """Message flags with portable bit values (not the OS's numbers).

    Use `from_native()` / `to_native()` to convert; native bits with no
    portable meaning are left out.  Platforms: BCAST and MCAST are reported
    by Windows only; on POSIX, compare `Message.packet_info.address` instead.
    """

    PEEK = 0x01
    OOB = 0x02
    TRUNC = 0x04
    CTRUNC = 0x08
    EOR = 0x10
    BCAST = 0x20
    MCAST = 0x40
    ERRQUEUE = 0x80

    @classmethod
    def from_native(cls, value: int) -> MsgFlag:
        """Map native msg_flags / dwFlags bits onto portable ones."""
        from ._api import NORMALIZER  # noqa: PLC0415 - _api imports this module

        return NORMALIZER.flags_from_native(value)

    def to_native(self) -> int:
        """Return this platform's native bits; raise ValueError for a flag it lacks."""
        from ._api import NORMALIZER  # noqa: PLC0415 - _api imports this module

        return NORMALIZER.flags_to_native(self)


class ECN(enum.IntEnum):
    """Explicit Congestion Notification codepoint (RFC 3168): the low 2 bits of TOS."""

    NOT_ECT = 0
    ECT1 = 1
    ECT0 = 2
    CE = 3


class Feature(enum.Enum):
    """Per-datagram metadata that `enable()` can switch on."""

    PACKET_INFO = "packet_info"
    """Destination address and receiving interface (IP_PKTINFO / IPV6_PKTINFO)."""
    TRAFFIC_CLASS = "traffic_class"
    """The TOS / traffic-class byte, and so ECN (IP_RECVTOS / IPV6_RECVTCLASS)."""
    ECN = "ecn"
    """The ECN codepoint alone: from the full byte where the OS gives it, else
    from Windows' IP_RECVECN (then TRAFFIC_CLASS is off and its DSCP unknown)."""
    HOP_LIMIT = "hop_limit"
    """The received TTL / hop limit (IP_RECVTTL / IPV6_RECVHOPLIMIT)."""
    TIMESTAMP = "timestamp"
    """Kernel receive time (SO_TIMESTAMPNS / SO_TIMESTAMP)."""
    CREDENTIALS = "credentials"
    """The sender's pid/uid/gid on Unix datagram sockets (SO_PASSCRED, Linux)."""
    SEGMENT_OFFLOAD = "segment_offload"
    """Receive coalescing (UDP_GRO on Linux, UDP_RECV_MAX_COALESCED_SIZE on Windows)."""


@dataclass(frozen=True, slots=True)
class PacketInfo:
    """Where a datagram arrived: its destination address and interface index.

    On send, `address` picks the source address and `interface` the outgoing
    interface (0: any).  An IPv4-mapped IPv6 address is always reported as
    IPv4Address, on every platform.
    """

    address: IPv4Address | IPv6Address
    interface: int


@dataclass(frozen=True, slots=True)
class TrafficClass:
    """The full IPv4 TOS / IPv6 traffic-class byte (DSCP << 2 | ECN)."""

    value: int

    @property
    def ecn(self) -> ECN:
        """The ECN codepoint (low 2 bits)."""
        return ECN(self.value & 3)

    @property
    def dscp(self) -> int:
        """The DiffServ codepoint (high 6 bits)."""
        return self.value >> 2


@dataclass(frozen=True, slots=True)
class HopLimit:
    """The IPv4 TTL / IPv6 hop limit the datagram arrived with."""

    value: int


@dataclass(frozen=True, slots=True)
class Timestamp:
    """Kernel receive time in nanoseconds since the Unix epoch (wall clock)."""

    ns: int

    @property
    def seconds(self) -> float:
        """The same time as a float of seconds, as time.time() gives."""
        return self.ns / 1e9


@dataclass(frozen=True, slots=True)
class FileDescriptors:
    """Descriptors passed with SCM_RIGHTS.  They belong to the caller.

    portmsg never closes them behind your back; `close()` or a `with` block
    closes them all.
    """

    fds: tuple[int, ...]

    def close(self) -> None:
        """Close every descriptor, ignoring ones that are already closed."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> FileDescriptors:  # noqa: PYI034 - a frozen final dataclass
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __iter__(self) -> Iterator[int]:
        return iter(self.fds)

    def __len__(self) -> int:
        return len(self.fds)


@dataclass(frozen=True, slots=True)
class Credentials:
    """The sender's process credentials (SCM_CREDENTIALS)."""

    pid: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True)
class SegmentSize:
    """Size of each coalesced datagram (UDP_GRO / UDP_COALESCED_INFO); the last may be shorter."""

    value: int


@dataclass(frozen=True, slots=True)
class RawControl:
    """A control message portmsg does not decode, exactly as the OS gave it."""

    level: int
    type: int
    data: bytes


Control = Union[  # noqa: UP007 - a runtime alias; `X | Y` of classes needs 3.10 evaluation rules
    PacketInfo, TrafficClass, HopLimit, Timestamp, FileDescriptors, Credentials, SegmentSize, RawControl
]
"""Any control object that `normalize()` returns and `encode()` accepts."""


class Message(tuple):  # type: ignore[type-arg]
    """One received datagram with its decoded control messages.

    Immutable and hashable.  It is a 4-tuple underneath (data, address,
    flags, controls), as os.stat_result is: building one costs a fifth of a
    frozen dataclass, which matters at a million datagrams a second.
    """

    __slots__ = ()
    __match_args__ = ("data", "address", "flags", "controls")

    def __new__(  # noqa: PYI034 - Message is final in practice; Self needs 3.11
        cls, data: bytes, address: Any, flags: MsgFlag, controls: tuple[Control, ...]
    ) -> Message:
        return tuple.__new__(cls, (data, address, flags, controls))

    data: bytes = property(itemgetter(0), doc="The payload (cut to the buffer size if `truncated`).")  # type: ignore[assignment]
    address: Any = property(itemgetter(1), doc="The sender's address, in the stdlib's form.")
    flags: MsgFlag = property(itemgetter(2), doc="Portable flags; TRUNC: data cut, CTRUNC: control data cut.")  # type: ignore[assignment]
    controls: tuple[Control, ...] = property(itemgetter(3), doc="Every control message, decoded or RawControl.")  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Message(data={self[0]!r}, address={self[1]!r}, flags={self[2]!r}, controls={self[3]!r})"

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    @property
    def packet_info(self) -> PacketInfo | None:
        """Destination address and interface, if PACKET_INFO was enabled."""
        for control in self[3]:
            if type(control) is PacketInfo:
                return control
        return None

    @property
    def traffic_class(self) -> TrafficClass | None:
        """The TOS / traffic-class byte, if TRAFFIC_CLASS was enabled."""
        for control in self[3]:
            if type(control) is TrafficClass:
                return control
        return None

    @property
    def ecn(self) -> ECN | None:
        """The ECN codepoint, if TRAFFIC_CLASS was enabled."""
        tc = self.traffic_class
        return None if tc is None else tc.ecn

    @property
    def hop_limit(self) -> HopLimit | None:
        """The TTL / hop limit, if HOP_LIMIT was enabled."""
        for control in self[3]:
            if type(control) is HopLimit:
                return control
        return None

    @property
    def timestamp(self) -> Timestamp | None:
        """The kernel receive time, if TIMESTAMP was enabled."""
        for control in self[3]:
            if type(control) is Timestamp:
                return control
        return None

    @property
    def fds(self) -> FileDescriptors | None:
        """Descriptors passed with SCM_RIGHTS (yours to close)."""
        for control in self[3]:
            if type(control) is FileDescriptors:
                return control
        return None

    @property
    def credentials(self) -> Credentials | None:
        """The sender's credentials, if CREDENTIALS was enabled."""
        for control in self[3]:
            if type(control) is Credentials:
                return control
        return None

    @property
    def segment_size(self) -> SegmentSize | None:
        """The coalesced segment size, if SEGMENT_OFFLOAD delivered one."""
        for control in self[3]:
            if type(control) is SegmentSize:
                return control
        return None

    @property
    def truncated(self) -> bool:
        """True when the data was cut to fit the buffer (MsgFlag.TRUNC)."""
        return bool(self.flags & MsgFlag.TRUNC)

    def reply_controls(self) -> list[Control]:
        """Controls that make a reply leave from the address (and interface) this datagram arrived on.

        `send(sock, reply, message.address, controls=message.reply_controls())`.
        Empty when PACKET_INFO was not enabled.
        """
        for control in self[3]:
            if type(control) is PacketInfo:
                return [control]
        return []

    def segments(self) -> list[bytes]:
        """Split coalesced data into its datagrams (one item if none were coalesced)."""
        size = self.segment_size
        if size is None or size.value <= 0:
            return [self.data]
        step = size.value
        return [self.data[i : i + step] for i in range(0, len(self.data), step)] or [b""]
