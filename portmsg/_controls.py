"""The control objects: one frozen, slotted dataclass per kind of control message, checked when built.

Pure Python, the same on every platform; `_types.py` re-exports them.
"""

from __future__ import annotations

import contextlib
import enum
import operator
import os
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

__all__ = [
    "ECN",
    "Clock",
    "Control",
    "Credentials",
    "Drops",
    "ErrorOrigin",
    "FileDescriptors",
    "HopLimit",
    "OriginalDestination",
    "PacketInfo",
    "QueuedError",
    "RawControl",
    "SegmentSize",
    "Timestamp",
    "TrafficClass",
]


def _check_int(owner: object, name: str, value: Any, low: int, high: int) -> None:
    """TypeError unless value is an int, ValueError unless low <= value <= high; both name the field."""
    if type(value) is not int:
        try:
            operator.index(value)
        except TypeError:
            msg = f"{type(owner).__name__}.{name} must be an int, not {type(value).__name__}"
            raise TypeError(msg) from None
        msg = f"{type(owner).__name__}.{name} must be a plain int, not {type(value).__name__}"
        raise TypeError(msg)
    if not low <= value <= high:
        msg = f"{type(owner).__name__}.{name} must be {low}-{high}, not {value}"
        raise ValueError(msg)


class ECN(enum.IntEnum):
    """Explicit Congestion Notification codepoint (RFC 3168): the low 2 bits of TOS."""

    NOT_ECT = 0
    ECT1 = 1
    ECT0 = 2
    CE = 3

    __str__ = enum.Enum.__str__  # "ECN.ECT0" on every Python, not 3.11's bare number


@dataclass(frozen=True, slots=True)
class PacketInfo:
    """Where a datagram arrived: its destination address and interface index.

    On send, `address` picks the source address and `interface` the outgoing
    interface (0: any); an unspecified address (0.0.0.0 or ::) pins the
    interface only.  An IPv4-mapped IPv6 address is always reported as
    IPv4Address, on every platform.
    """

    address: IPv4Address | IPv6Address
    interface: int
    local: IPv4Address | IPv6Address | None = field(default=None, compare=False)
    """The local address the OS names as the source for a reply, where it gives one
    (Linux's ipi_spec_dst: the receiving interface's address when `address` is a
    broadcast or multicast one); None elsewhere.  Not part of equality."""

    def __post_init__(self) -> None:
        for name in ("address", "local"):
            value = getattr(self, name)
            if not isinstance(value, (IPv4Address, IPv6Address)) and not (name == "local" and value is None):
                msg = f"PacketInfo.{name} must be an IPv4Address or IPv6Address, not {type(value).__name__}"
                raise TypeError(msg)
        _check_int(self, "interface", self.interface, 0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class TrafficClass:
    """The full IPv4 TOS / IPv6 traffic-class byte (DSCP << 2 | ECN)."""

    value: int

    def __post_init__(self) -> None:
        _check_int(self, "value", self.value, 0, 255)

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
    """The IPv4 TTL / IPv6 hop limit a datagram arrived with, or leaves with (1-255 on send)."""

    value: int

    def __post_init__(self) -> None:
        _check_int(self, "value", self.value, 0, 255)


class Clock(enum.Enum):
    """Which clock a Timestamp reads."""

    REALTIME = "realtime"
    """Wall time, nanoseconds since the Unix epoch: compare with time.time_ns() (POSIX)."""
    PERF_COUNTER = "perf_counter"
    """Windows' QueryPerformanceCounter in nanoseconds, monotonic and not wall time:
    compare with time.perf_counter_ns(), which reads the same counter there."""

    __str__ = enum.Enum.__str__


@dataclass(frozen=True, slots=True)
class Timestamp:
    """Kernel receive time in nanoseconds on `clock` (POSIX: wall time; Windows: the performance counter)."""

    ns: int
    clock: Clock = Clock.REALTIME

    def __post_init__(self) -> None:
        if type(self.ns) is not int:
            msg = f"Timestamp.ns must be an int, not {type(self.ns).__name__}"
            raise TypeError(msg)
        if not isinstance(self.clock, Clock):
            msg = f"Timestamp.clock must be a Clock, not {type(self.clock).__name__}"
            raise TypeError(msg)

    @property
    def seconds(self) -> float:
        """The same time as a float of seconds, as time.time() (REALTIME) or time.perf_counter() gives."""
        return self.ns / 1e9


@dataclass(frozen=True, slots=True)
class FileDescriptors:
    """Descriptors passed with SCM_RIGHTS.  They belong to the caller.

    portmsg never closes them behind your back; `close()` or a `with` block
    closes them all.
    """

    fds: tuple[int, ...]

    def __post_init__(self) -> None:
        fds = self.fds
        if type(fds) is not tuple:
            try:
                fds = tuple(fds)
            except TypeError:
                msg = f"FileDescriptors.fds must be an iterable of int, not {type(self.fds).__name__}"
                raise TypeError(msg) from None
            object.__setattr__(self, "fds", fds)  # frozen: normalise once, here
        for fd in fds:
            _check_int(self, "fds item", fd, 0, 0x7FFFFFFF)

    def close(self) -> None:
        """Close every descriptor, ignoring ones that are already closed."""
        for fd in self.fds:
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> FileDescriptors:  # noqa: PYI034 - Self needs 3.11
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

    def __post_init__(self) -> None:
        _check_int(self, "pid", self.pid, -(2**31), 2**31 - 1)
        _check_int(self, "uid", self.uid, 0, 0xFFFFFFFF)
        _check_int(self, "gid", self.gid, 0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class SegmentSize:
    """Size of each coalesced datagram (UDP_GRO / UDP_COALESCED_INFO); the last may be shorter.

    On send, the size to cut the data into (GSO: UDP_SEGMENT / UDP_SEND_MSG_SIZE).
    1-65535: no UDP datagram is larger, and none is empty in a coalesced burst.
    """

    value: int

    def __post_init__(self) -> None:
        _check_int(self, "value", self.value, 1, 0xFFFF)


@dataclass(frozen=True, slots=True)
class Drops:
    """Datagrams the socket dropped (its receive buffer was full) since DROPS was enabled.

    The count when this datagram was queued (Linux's SO_RXQ_OVFL, a wrapping 32-bit
    counter).  The OS attaches it only once something was dropped: a datagram without
    it means none so far.
    """

    count: int

    def __post_init__(self) -> None:
        _check_int(self, "count", self.count, 0, 0xFFFFFFFF)


@dataclass(frozen=True, slots=True)
class OriginalDestination:
    """The address and port a datagram was sent to, before any redirection (TPROXY, NAT).

    Without redirection it is the socket's own address.  An IPv4-mapped address is
    reported as IPv4Address, as PacketInfo does.
    """

    address: IPv4Address | IPv6Address
    port: int

    def __post_init__(self) -> None:
        if not isinstance(self.address, (IPv4Address, IPv6Address)):
            kind = type(self.address).__name__
            msg = f"OriginalDestination.address must be an IPv4Address or IPv6Address, not {kind}"
            raise TypeError(msg)
        _check_int(self, "port", self.port, 0, 0xFFFF)


class ErrorOrigin(enum.IntEnum):
    """Who reported a queued error (Linux's SO_EE_ORIGIN_* values)."""

    NONE = 0
    LOCAL = 1
    """This host, before sending (EMSGSIZE above the path MTU)."""
    ICMP = 2
    """An ICMP message from the network (or from this host, on loopback)."""
    ICMP6 = 3
    """An ICMPv6 message."""
    TXSTATUS = 4
    ZEROCOPY = 5
    TXTIME = 6

    __str__ = enum.Enum.__str__


@dataclass(frozen=True, slots=True)
class QueuedError:
    """An error the OS queued for the socket with the datagram that caused it (`recv_error()`).

    Linux's sock_extended_err: `errno` (ECONNREFUSED for an ICMP port unreachable,
    EMSGSIZE above the path MTU, EHOSTUNREACH, ...), `origin`, the ICMP `type` and
    `code` (ICMP origins), `info` (the path MTU for EMSGSIZE), `data`, and `offender`,
    the address of the host that reported it where the OS names one.
    """

    errno: int
    origin: ErrorOrigin | int
    type: int
    code: int
    info: int
    data: int
    offender: IPv4Address | IPv6Address | None = None

    def __post_init__(self) -> None:
        _check_int(self, "errno", self.errno, 0, 0xFFFFFFFF)
        origin = self.origin
        _check_int(self, "origin", int(origin) if isinstance(origin, ErrorOrigin) else origin, 0, 255)
        _check_int(self, "type", self.type, 0, 255)
        _check_int(self, "code", self.code, 0, 255)
        _check_int(self, "info", self.info, 0, 0xFFFFFFFF)
        _check_int(self, "data", self.data, 0, 0xFFFFFFFF)
        if self.offender is not None and not isinstance(self.offender, (IPv4Address, IPv6Address)):
            kind = type(self.offender).__name__
            msg = f"QueuedError.offender must be an IPv4Address, IPv6Address or None, not {kind}"
            raise TypeError(msg)

    @property
    def strerror(self) -> str:
        """The error's text, as OSError would show it."""
        return os.strerror(self.errno)


@dataclass(frozen=True, slots=True)
class RawControl:
    """A control message portmsg does not decode, exactly as the OS gave it."""

    level: int
    type: int
    data: bytes

    def __post_init__(self) -> None:
        _check_int(self, "level", self.level, -(2**31), 2**31 - 1)
        _check_int(self, "type", self.type, -(2**31), 2**31 - 1)
        if type(self.data) is not bytes:
            try:
                object.__setattr__(self, "data", bytes(memoryview(self.data)))  # frozen: normalise once
            except TypeError:
                msg = f"RawControl.data must be bytes-like, not {type(self.data).__name__}"
                raise TypeError(msg) from None


Control = (
    PacketInfo
    | TrafficClass
    | HopLimit
    | Timestamp
    | FileDescriptors
    | Credentials
    | SegmentSize
    | Drops
    | OriginalDestination
    | QueuedError
    | RawControl
)
"""Any control object that `normalize()` returns and `encode()` accepts."""
