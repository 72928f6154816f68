"""Control objects -> native (level, type, data) tuples, in the form the socket and destination need."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING

from ._types import (
    Control,
    Credentials,
    Drops,
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

    from ._report import NativeControl

__all__ = ["V4_MAPPED", "Encoder", "unsigned"]

V4_MAPPED = b"\x00" * 10 + b"\xff\xff"
"""The first 12 bytes of an IPv4-mapped IPv6 address (RFC 4291 section 2.5.5.2)."""
_PATHS = {"AF_INET": "v4", "AF_INET6": "v6", "AF_UNIX": "unix"}
_INT = struct.Struct("=i")
_UINT16 = struct.Struct("=H")


def unsigned(size: int) -> str:
    return {1: "B", 2: "H", 4: "I", 8: "Q"}[size]


class Encoder:
    """The encoder for one platform's control messages (its constants, as in `portmsg.native`)."""

    def __init__(self, constants: Mapping[str, int], platform: str) -> None:
        self.constants = constants
        self.platform = platform
        # Looked up once: every send asks which path it takes (and constants.get() of a key
        # decoded in another thread is slow on free-threaded 3.13).
        self._paths = {constants[name]: path for name, path in _PATHS.items() if name in constants}

    def encode(
        self, controls: Iterable[Control], family: int | None = None, *, ipv4_destination: bool | None = None
    ) -> list[NativeControl]:
        """Encode controls as native (level, type, data) tuples for sendmsg.

        Each control takes the form that works for the socket's family and,
        on an AF_INET6 socket, for the destination: a dual-stack socket
        sends to an IPv4(-mapped) peer down the IPv4 path, which honours
        IP_TOS / IP_TTL but ignores IPV6_TCLASS / IPV6_HOPLIMIT.  A control
        that no form can carry raises ValueError, naming it and the family.

        Args:
            controls: control objects; RawControl passes through unchanged.
            family: the socket's family (AF_INET, AF_INET6, AF_UNIX), or None:
                then only controls whose form does not depend on it
                (PacketInfo picks its form by its address).
            ipv4_destination: on an AF_INET6 socket, whether the datagram goes
                to an IPv4-mapped address (True), an IPv6 one (False), or
                is not known (None: IPv6 forms, IPv4 sources mapped).

        Raises:
            ValueError: a control this platform, socket or destination cannot send.
            TypeError: an object that is not a control.

        """
        path = self._path(family, ipv4_destination=ipv4_destination)
        return [self._encode_one(control, family, path) for control in controls]

    def _path(self, family: int | None, *, ipv4_destination: bool | None) -> str | None:
        """Which forms apply: "v4", "v6", "v6?" (IPv6 socket, destination unknown), "unix", or None."""
        if family is None:
            return None
        path = self._paths.get(family, "other")
        if path == "v6":
            return "v6?" if ipv4_destination is None else ("v4-via-v6" if ipv4_destination else "v6")
        return path

    def _need(self, control: Control, *names: str) -> list[int]:
        missing = [name for name in names if name not in self.constants]
        if missing:
            msg = f"{type(control).__name__} cannot be sent on {self.platform}: it lacks {', '.join(missing)}"
            raise ValueError(msg)
        return [self.constants[name] for name in names]

    def _family_name(self, family: int | None) -> str:
        names = {self.constants.get(name): name for name in ("AF_INET", "AF_INET6", "AF_UNIX")}
        return names.get(family, f"family {family}")

    def _refuse(self, control: Control, family: int | None, why: str = "") -> ValueError:
        return ValueError(f"{control!r} cannot be sent on an {self._family_name(family)} socket{why}; nothing was sent")

    def _encode_one(self, control: Control, family: int | None, path: str | None) -> NativeControl:  # noqa: PLR0911
        c = self.constants
        if isinstance(control, RawControl):
            return (control.level, control.type, bytes(control.data))
        if isinstance(control, (Timestamp, Drops, OriginalDestination, QueuedError)):
            msg = f"{type(control).__name__} is receive-only and cannot be sent"
            raise ValueError(msg)  # noqa: TRY004 - a valid type that cannot be sent
        if isinstance(control, (FileDescriptors, Credentials)):
            if path not in (None, "unix"):
                raise self._refuse(control, family, " (descriptors and credentials travel over AF_UNIX only)")
            if isinstance(control, FileDescriptors):
                level, kind = self._need(control, "SOL_SOCKET", "SCM_RIGHTS")
                return (level, kind, struct.pack(f"={len(control.fds)}i", *control.fds))
            level, kind = self._need(control, "SOL_SOCKET", "SCM_CREDENTIALS")
            return (level, kind, struct.pack("=iII", control.pid, control.uid, control.gid))
        if path in ("unix", "other"):
            raise self._refuse(control, family)
        if isinstance(control, PacketInfo):
            return self._encode_pktinfo(control, family, path)
        if isinstance(control, (TrafficClass, HopLimit)):
            return self._encode_byte(control, family, path)
        if isinstance(control, SegmentSize):
            if "UDP_SEGMENT" in c:  # Linux reads a u16 (udp_cmsg_send in net/ipv4/udp.c)
                if not 0 < control.value <= 0xFFFF:  # noqa: PLR2004
                    msg = f"{control!r}: Linux segments by 1-65535 bytes; nothing was sent"
                    raise ValueError(msg)
                level, kind = self._need(control, "IPPROTO_UDP", "UDP_SEGMENT")
                return (level, kind, _UINT16.pack(control.value))
            level, kind = self._need(control, "IPPROTO_UDP", "UDP_SEND_MSG_SIZE")
            return (level, kind, struct.pack("=I", control.value))
        msg = f"expected a portmsg control object, not {type(control).__name__}"
        raise TypeError(msg)

    def _encode_byte(self, control: TrafficClass | HopLimit, family: int | None, path: str | None) -> NativeControl:
        """TOS / traffic class or TTL / hop limit: an int in the form of the path the datagram takes."""
        if path is None:
            msg = f"encoding {type(control).__name__} needs family=AF_INET or AF_INET6"
            raise ValueError(msg)
        v6 = path in ("v6", "v6?")
        if isinstance(control, HopLimit) and not v6 and control.value == 0:
            raise self._refuse(control, family, " (an IPv4 TTL is 1-255)")
        if isinstance(control, TrafficClass) and "IP_ECN" in self.constants:
            # Windows marks ECN per datagram with IP_ECN / IPV6_ECN; the DSCP
            # half of the byte is not settable per datagram there.
            if control.dscp:
                msg = f"TrafficClass with DSCP {control.dscp} cannot be sent on {self.platform}: only the ECN bits"
                raise ValueError(msg)
            names = ("IPPROTO_IPV6", "IPV6_ECN") if v6 else ("IPPROTO_IP", "IP_ECN")
        elif isinstance(control, TrafficClass):
            names = ("IPPROTO_IPV6", "IPV6_TCLASS") if v6 else ("IPPROTO_IP", "IP_TOS")
        else:
            names = ("IPPROTO_IPV6", "IPV6_HOPLIMIT") if v6 else ("IPPROTO_IP", "IP_TTL")
        level, kind = self._need(control, *names)
        return (level, kind, _INT.pack(control.value))

    def _encode_pktinfo(self, control: PacketInfo, family: int | None, path: str | None) -> NativeControl:
        """The source address (and interface) in the form the socket takes: IP_PKTINFO or IPV6_PKTINFO."""
        c = self.constants
        address = control.address
        ipv4 = _ipv4_of(address)
        if path == "v4":
            if ipv4 is None:
                raise self._refuse(control, family, " (an IPv6 source)")
            v6, packed = False, ipv4.packed
        elif path is None:  # no socket: the address picks the form
            v6, packed = isinstance(address, IPv6Address), address.packed
        elif path == "v6" and ipv4 is not None and not ipv4.is_unspecified:
            raise self._refuse(control, family, " to an IPv6 destination (an IPv4 source)")
        elif path == "v4-via-v6" and ipv4 is None and not address.is_unspecified:
            raise self._refuse(control, family, " to an IPv4 destination (an IPv6 source)")
        else:  # AF_INET6: an IPv4 source goes out v4-mapped; "unspecified" pins only the interface
            v6 = True
            mapped = None if ipv4 is None else bytes(16) if ipv4.is_unspecified else V4_MAPPED + ipv4.packed
            packed = address.packed if mapped is None else mapped
        if not v6 and "IP_PKTINFO" not in c and "IP_SENDSRCADDR" in c:
            # FreeBSD: no IP_PKTINFO; the source address alone goes in IP_SENDSRCADDR (ip(4)).
            if control.interface:
                raise self._refuse(control, family, f" (an interface: {self.platform} sends a source address only)")
            level, kind = self._need(control, "IPPROTO_IP", "IP_SENDSRCADDR")
            return (level, kind, packed)
        prefix = "PM_IN6_PKTINFO" if v6 else "PM_IN_PKTINFO"
        names = ("IPPROTO_IPV6", "IPV6_PKTINFO") if v6 else ("IPPROTO_IP", "IP_PKTINFO")
        level, kind, size, addr, index, index_size = self._need(
            control,
            *names,
            f"{prefix}_SIZE",
            f"{prefix}_ADDR_OFFSET",
            f"{prefix}_IFINDEX_OFFSET",
            f"{prefix}_IFINDEX_SIZE",
        )
        payload = bytearray(size)
        payload[addr : addr + len(packed)] = packed
        # Linux and macOS pick the source from ipi_spec_dst; Windows from ipi_addr.
        spec_dst = c.get(f"{prefix}_SPEC_DST_OFFSET")
        if spec_dst is not None:
            payload[spec_dst : spec_dst + len(packed)] = packed
        struct.pack_into("=" + unsigned(index_size), payload, index, control.interface)
        return (level, kind, bytes(payload))


def _ipv4_of(address: IPv4Address | IPv6Address) -> IPv4Address | None:
    """The IPv4 address behind address (itself, or an IPv4-mapped IPv6 one), else None."""
    if isinstance(address, IPv4Address):
        return address
    return address.ipv4_mapped
