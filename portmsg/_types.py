"""The shared Python types: the same values on every platform.

Nothing here knows which OS it runs on; the normalizer (_normalize.py) turns
each platform's native control messages and flags into these.
"""

from __future__ import annotations

import enum
from ipaddress import IPv4Address, IPv6Address
from operator import attrgetter, itemgetter
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from ._controls import (
    ECN,
    Clock,
    Control,
    Credentials,
    Drops,
    ErrorOrigin,
    FileDescriptors,
    HopLimit,
    OriginalDestination,
    PacketInfo,
    QueuedError,
    RawControl,
    SegmentSize,
    Timestamp,
    TrafficClass,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "ECN",
    "Clock",
    "Control",
    "Controls",
    "Credentials",
    "Drops",
    "Enabled",
    "ErrorOrigin",
    "Feature",
    "FileDescriptors",
    "HopLimit",
    "Message",
    "MsgFlag",
    "OriginalDestination",
    "PacketInfo",
    "QueuedError",
    "RawControl",
    "SegmentSize",
    "Timestamp",
    "TrafficClass",
    "reply_controls",
    "set_flag_codec",
]


class FlagCodec(Protocol):
    """Converts MsgFlag to and from one platform's native bits (the normalizer does)."""

    def flags_from_native(self, value: int) -> MsgFlag: ...
    def flags_to_native(self, flags: MsgFlag) -> int: ...


_flag_codec: list[FlagCodec] = []


def set_flag_codec(codec: FlagCodec) -> None:
    """Give MsgFlag.from_native / to_native this platform's bits (called once by _api)."""
    _flag_codec[:] = [codec]


def _codec() -> FlagCodec:
    if not _flag_codec:
        msg = "MsgFlag's native values are set when portmsg is imported: import portmsg first"
        raise RuntimeError(msg)
    return _flag_codec[0]


class MsgFlag(enum.IntFlag):
    """Message flags with portable bit values (not the OS's numbers).

    Use `from_native()` / `to_native()` to convert; native bits with no
    portable meaning are left out.  BCAST and MCAST mean the same everywhere:
    Windows and NetBSD report them, other POSIX systems derive them from the
    destination while PACKET_INFO is on (see the README).
    """

    def __str__(self) -> str:
        """Names the flags lowest bit first, as "MsgFlag.TRUNC|CTRUNC" on every Python; "0" for none."""
        value = self._value_
        if not value:
            return "0"
        names = [name for name, m in type(self).__members__.items() if m._value_ & value]
        rest = value & ~sum(m._value_ for m in type(self))
        if rest:
            names.append(hex(rest))
        return "MsgFlag." + "|".join(names)

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
        return _codec().flags_from_native(value)

    def to_native(self) -> int:
        """Return this platform's native bits; raise ValueError for a flag it lacks."""
        return _codec().flags_to_native(self)


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
    """Kernel receive time (SO_TIMESTAMPNS / SO_TIMESTAMP; Windows: SIO_TIMESTAMPING, on
    the performance counter's clock, see Clock)."""
    CREDENTIALS = "credentials"
    """The sender's pid/uid/gid on Unix datagram sockets (SO_PASSCRED, Linux)."""
    SEGMENT_OFFLOAD = "segment_offload"
    """Receive coalescing (UDP_GRO on Linux, UDP_RECV_MAX_COALESCED_SIZE on Windows)."""
    DROPS = "drops"
    """How many datagrams the socket has dropped so far (SO_RXQ_OVFL, Linux)."""
    ORIGINAL_DESTINATION = "original_destination"
    """Destination address and port before any redirection, for transparent proxies
    (IP_RECVORIGDSTADDR / IPV6_RECVORIGDSTADDR: Linux, FreeBSD)."""
    ERRORS = "errors"
    """ICMP and local errors queued with the datagram that caused them, read with
    `recv_error()` (IP_RECVERR / IPV6_RECVERR, Linux).  Linux then reports such errors
    on unconnected sockets too: the next send or receive raises one once, unless
    `recv_error()` took it first."""


class Enabled(frozenset[Feature]):
    """What `enable()` returns: the features now on, and why each other one asked for is off."""

    __slots__ = ("refused",)
    refused: Mapping[Feature, str]
    """Feature -> why it is off: the option the OS refused and its error, a name the
    platform's headers lack, or a socket it does not apply to."""

    def __new__(cls, on: Iterable[Feature], refused: Mapping[Feature, str]) -> Enabled:  # noqa: PYI034 - Self needs 3.11
        self = super().__new__(cls, on)
        self.refused = MappingProxyType(dict(refused))
        return self

    def __repr__(self) -> str:
        return f"Enabled({sorted(f.name for f in self)}, refused={dict(self.refused)!r})"

    def missing(self, message: Message) -> frozenset[Feature]:
        """The features on here whose control `message` lacks.

        A feature on but missing means the control buffer was too small
        (`MsgFlag.CTRUNC` then says so) or the OS did not attach it.  Costs
        nothing per receive: ask when it matters.  SEGMENT_OFFLOAD, DROPS and
        ERRORS are never missing: their controls come only when there is
        something to report.
        """
        present = {type(control) for control in message[3]}
        return frozenset(f for f in self if f in _CARRIED_BY and _CARRIED_BY[f] not in present)


_LIMITED_BROADCAST = IPv4Address("255.255.255.255")

# The control each feature puts on every datagram (Enabled.missing).
_CARRIED_BY: dict[Feature, type] = {
    Feature.PACKET_INFO: PacketInfo,
    Feature.TRAFFIC_CLASS: TrafficClass,
    Feature.ECN: TrafficClass,
    Feature.HOP_LIMIT: HopLimit,
    Feature.TIMESTAMP: Timestamp,
    Feature.CREDENTIALS: Credentials,
    Feature.ORIGINAL_DESTINATION: OriginalDestination,
}


def _answerable(address: IPv4Address | IPv6Address | None) -> bool:
    return address is not None and not (address.is_multicast or address.is_unspecified or address == _LIMITED_BROADCAST)


def reply_controls(controls: tuple[Control, ...], flags: MsgFlag) -> list[Control]:
    """Message.reply_controls() for a datagram's controls and flags (see there)."""
    info = next((c for c in controls if type(c) is PacketInfo), None)
    if info is None:
        return []
    if _answerable(info.local):  # Linux names the receiving interface's own address
        return [PacketInfo(info.local, info.interface)]  # type: ignore[arg-type]
    source = info.address
    if not _answerable(source) or flags & (MsgFlag.BCAST | MsgFlag.MCAST):
        # Not an address to answer from: pin the receiving interface and let the OS pick its address.
        source = IPv4Address(0) if isinstance(source, IPv4Address) else IPv6Address(0)
    return [PacketInfo(source, info.interface)]


class Controls(tuple):  # type: ignore[type-arg]  # noqa: SLOT001 - its attributes live in a __dict__ (a tuple subclass takes no slots)
    """A datagram's control objects: a tuple, equal to a plain one of the same controls.

    The first control of each kind is also an attribute (None where there is
    none), set once when the set is built: decoded control sets are cached by
    their bytes, so a Message's accessors (`message.packet_info`) are two C
    lookups, no Python code per datagram.
    """

    packet_info: PacketInfo | None = None
    traffic_class: TrafficClass | None = None
    hop_limit: HopLimit | None = None
    timestamp: Timestamp | None = None
    fds: FileDescriptors | None = None
    credentials: Credentials | None = None
    segment_size: SegmentSize | None = None
    drops: Drops | None = None
    original_destination: OriginalDestination | None = None
    error: QueuedError | None = None

    def __new__(cls, controls: Iterable[Control] = ()) -> Controls:  # noqa: PYI034 - Self needs 3.11
        self = tuple.__new__(cls, controls)
        for control in self:
            name = _FIELD_OF.get(type(control))
            if name is not None and getattr(self, name) is None:
                setattr(self, name, control)
        return self


_FIELD_OF: dict[type, str] = {
    PacketInfo: "packet_info",
    TrafficClass: "traffic_class",
    HopLimit: "hop_limit",
    Timestamp: "timestamp",
    FileDescriptors: "fds",
    Credentials: "credentials",
    SegmentSize: "segment_size",
    Drops: "drops",
    OriginalDestination: "original_destination",
    QueuedError: "error",
}
NO_CONTROLS = Controls()
"""The control set of a datagram that came with none."""


def _first(name: str, doc: str) -> Any:
    """A read-only property: the message's first control of a kind, or None (the Controls attribute `name`).

    Typed as the attribute's annotation says (the factory itself returns Any).
    """
    return property(attrgetter(f"controls.{name}"), doc=doc)


class Message(tuple):  # type: ignore[type-arg]
    """One received datagram with its decoded control messages.

    Immutable and hashable.  It is a 4-tuple underneath (data, address,
    flags, controls), as os.stat_result is: building one costs a fifth of a
    frozen dataclass, which matters at a million datagrams a second.  The
    receive path builds it with tuple.__new__ directly (no __new__ frame).
    """

    __slots__ = ()
    __match_args__ = ("data", "address", "flags", "controls")

    def __new__(  # noqa: PYI034 - Self needs 3.11
        cls, data: bytes, address: Any, flags: MsgFlag, controls: tuple[Control, ...]
    ) -> Message:
        return tuple.__new__(
            cls, (data, address, flags, controls if type(controls) is Controls else Controls(controls))
        )

    data: bytes = property(itemgetter(0), doc="The payload (cut to the buffer size if `truncated`).")  # type: ignore[assignment]
    address: Any = property(itemgetter(1), doc="The sender's address, in the stdlib's form.")
    flags: MsgFlag = property(itemgetter(2), doc="Portable flags; TRUNC: data cut, CTRUNC: control data cut.")  # type: ignore[assignment]
    controls: tuple[Control, ...] = property(itemgetter(3), doc="Every control message, decoded or RawControl.")  # type: ignore[assignment]

    packet_info: PacketInfo | None = _first("packet_info", "Destination address and interface, if PACKET_INFO is on.")
    traffic_class: TrafficClass | None = _first(
        "traffic_class", "The TOS / traffic-class byte, if TRAFFIC_CLASS (or, ECN bits only, ECN) is on."
    )
    hop_limit: HopLimit | None = _first("hop_limit", "The TTL / hop limit, if HOP_LIMIT is on.")
    timestamp: Timestamp | None = _first("timestamp", "The kernel receive time, if TIMESTAMP is on.")
    fds: FileDescriptors | None = _first("fds", "Descriptors passed with SCM_RIGHTS (yours to close).")
    credentials: Credentials | None = _first("credentials", "The sender's credentials, if CREDENTIALS is on.")
    segment_size: SegmentSize | None = _first(
        "segment_size", "The coalesced segment size, if SEGMENT_OFFLOAD coalesced."
    )
    drops: Drops | None = _first("drops", "Datagrams dropped so far, if DROPS is on and any were (None: none).")
    original_destination: OriginalDestination | None = _first(
        "original_destination", "Destination address and port before redirection, if ORIGINAL_DESTINATION is on."
    )
    error: QueuedError | None = _first("error", "The queued error a `recv_error()` message carries.")

    def __repr__(self) -> str:
        return f"Message(data={self[0]!r}, address={self[1]!r}, flags={self[2]!r}, controls={self[3]!r})"

    def __getnewargs__(self) -> tuple[Any, ...]:
        return tuple(self)

    @property
    def ecn(self) -> ECN | None:
        """The ECN codepoint, if TRAFFIC_CLASS or ECN is on."""
        tc = self.traffic_class
        return None if tc is None else tc.ecn

    @property
    def truncated(self) -> bool:
        """True when the data was cut to fit the buffer (MsgFlag.TRUNC)."""
        return bool(self[2] & MsgFlag.TRUNC)

    def reply_controls(self) -> list[Control]:
        """Controls that make a reply leave from the address (and interface) this datagram arrived on.

        `send(sock, reply, message.address, controls=message.reply_controls())`.
        The source is the address the datagram was sent to, or, when that was a
        broadcast or multicast address, the receiving interface's own (where the
        OS names it, as Linux does) or the interface alone.  Empty when
        PACKET_INFO was not enabled.
        """
        return reply_controls(self[3], self[2])

    def segments(self) -> list[bytes]:
        """Split coalesced data into its datagrams (one item if none were coalesced).

        Every item is a whole datagram: when a coalesced burst was cut
        (`truncated`), the cut piece and what followed it are left out, so a
        partial datagram is never presented as one.
        """
        size = self.segment_size
        data = self[0]
        if size is None or size.value <= 0:
            return [data]
        step = size.value
        pieces = [data[i : i + step] for i in range(0, len(data), step)] or [b""]
        if self.truncated and pieces and len(pieces[-1]) < step:
            pieces.pop()
        return pieces
