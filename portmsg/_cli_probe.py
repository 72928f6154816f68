"""The command line's shared formatting and its probe: what this platform delivers, shown per feature."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import (
    BACKEND,
    PLATFORM,
    Clock,
    ErrorOrigin,
    Feature,
    FileDescriptors,
    Message,
    MsgFlag,
    SegmentSize,
    Timestamp,
    __version__,
    enable,
    native,
    recv,
    recv_error,
    send,
)

_AF_UNIX: int = getattr(socket, "AF_UNIX", -1)  # absent on Windows
_DERIVE_CAST = not hasattr(native, "MSG_BCAST")  # as recv() does: BCAST / MCAST from the destination
_TOS = 0xBA  # DSCP 46 (EF), ECN ECT(0): a value no default path sets
_PROBE_TIMEOUT = 2.0
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)


# -- how a datagram is shown ------------------------------------------------------------


def format_address(address: Any) -> str | None:
    """An address as people write it: 127.0.0.1:53, [::1]:53, [fe80::1%eth0]:53, a Unix path."""
    if address is None or isinstance(address, str):
        return address
    if isinstance(address, bytes):  # Linux abstract namespace
        return "@" + address[1:].decode(errors="replace")
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _interface_name(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except (OSError, AttributeError):
        return str(index)


def when(ts: Timestamp) -> str:
    """A receive time as people read it: UTC wall time (REALTIME), or the clock's seconds (PERF_COUNTER)."""
    if ts.clock is Clock.REALTIME:
        moment = dt.datetime.fromtimestamp(ts.ns // 1_000_000_000, tz=dt.timezone.utc)
        return f"{moment:%Y-%m-%dT%H:%M:%S}.{ts.ns % 1_000_000_000:09d}Z"
    return f"{ts.ns / 1e9:.9f} s on the performance counter"


def age_us(ts: Timestamp) -> int:
    """Microseconds from the kernel's receive time to now, on the timestamp's own clock."""
    now = time.time_ns() if ts.clock is Clock.REALTIME else time.perf_counter_ns()
    return (now - ts.ns) // 1000


def describe(message: Message, data: bytes | None = None, length: int | None = None) -> dict[str, Any]:
    """A JSON-ready summary of one datagram: see the README's `listen --json` fields."""
    info, tc, hop, ts = message.packet_info, message.traffic_class, message.hop_limit, message.timestamp
    origin = message.original_destination
    payload = message.data if data is None else data
    return {
        "source": format_address(message.address),
        "destination": None if info is None else str(info.address),
        "interface": None if info is None else _interface_name(info.interface),
        "tos": None if tc is None else tc.value,
        "ecn": None if message.ecn is None else message.ecn.name,
        "ttl": None if hop is None else hop.value,
        "timestamp_ns": None if ts is None else ts.ns,
        "timestamp": None if ts is None else when(ts),
        "age_us": None if ts is None else age_us(ts),
        "size": len(payload),
        "length": length,
        "truncated": message.truncated,
        "flags": [flag.name for flag in MsgFlag if flag & message.flags],
        "original_destination": None if origin is None else format_address((str(origin.address), origin.port)),
        "drops": None if message.drops is None else message.drops.count,
    }


def _print(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary), flush=True)
    else:
        print(" ".join(f"{k}={v}" for k, v in summary.items() if v is not None and v != []), flush=True)


# -- probe --------------------------------------------------------------------------


@dataclass
class Leg:
    """One transport of the probe: what enable() said, what arrived, what went wrong."""

    name: str
    enabled: frozenset[Feature] = frozenset()
    refused: dict[Feature, str] = field(default_factory=dict)
    messages: list[Message] = field(default_factory=list)
    error: str | None = None
    note: str | None = None


def _set_quietly(sock: socket.socket, level: str, option: str, value: int) -> bool:
    """Set an option if the platform has it; True if it took."""
    if hasattr(native, level) and hasattr(native, option):
        with contextlib.suppress(OSError):
            sock.setsockopt(getattr(native, level), getattr(native, option), value)
            return True
    return False


def _probe_inet(leg: Leg, family: int, bind: str, target: str) -> None:
    sender_family = socket.AF_INET if ":" not in target else socket.AF_INET6
    with (
        socket.socket(family, socket.SOCK_DGRAM) as receiver,
        socket.socket(sender_family, socket.SOCK_DGRAM) as sender,
    ):
        if family == socket.AF_INET6 and ":" not in target:
            _set_quietly(receiver, "IPPROTO_IPV6", "IPV6_V6ONLY", 0)
        receiver.bind((bind, 0))
        on = enable(receiver, *Feature)
        leg.enabled, leg.refused = frozenset(on), dict(on.refused)
        receiver.settimeout(_PROBE_TIMEOUT)
        tos_option = "IP_TOS" if sender_family == socket.AF_INET else "IPV6_TCLASS"
        level = "IPPROTO_IP" if sender_family == socket.AF_INET else "IPPROTO_IPV6"
        if not _set_quietly(sender, level, tos_option, _TOS):
            leg.note = f"the sender could not set {tos_option}"
        destination = (target, receiver.getsockname()[1])
        sender.sendto(b"portmsg probe", destination)
        leg.messages.append(recv(receiver))
        if Feature.SEGMENT_OFFLOAD in on and hasattr(native, "UDP_SEGMENT"):
            # A GSO burst (3 x 100 bytes) shows whether the receiver coalesces it.
            send(sender, b"g" * 300, destination, controls=[SegmentSize(100)])
            leg.messages.append(recv(receiver))
        if Feature.DROPS in on:
            leg.messages.extend(_overflow(receiver, sender, destination))
        if Feature.ERRORS in on:
            leg.messages.extend(_provoke_error(receiver, target))


def _overflow(receiver: socket.socket, sender: socket.socket, destination: Any) -> list[Message]:
    """Overfill the smallest receive buffer the OS allows, drain it, then one more datagram counts the drops."""
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)
    for _ in range(64):
        sender.sendto(b"o" * 512, destination)
    receiver.setblocking(False)  # noqa: FBT003
    with contextlib.suppress(BlockingIOError):
        while True:
            recv(receiver)
    receiver.settimeout(_PROBE_TIMEOUT)
    sender.sendto(b"portmsg probe: after the drops", destination)
    return [recv(receiver)]


def _provoke_error(receiver: socket.socket, target: str) -> list[Message]:
    """Send to a port nobody listens on; the ICMP port unreachable comes back on the error queue."""
    family = socket.AF_INET6 if ":" in target else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as gone:
        gone.bind((target, 0))
        port = gone.getsockname()[1]
    mapped = receiver.family == socket.AF_INET6 and family == socket.AF_INET
    receiver.sendto(b"portmsg probe: nobody here", ("::ffff:" + target if mapped else target, port))
    for _ in range(20):
        error = recv_error(receiver)
        if error is not None:
            return [error]
        time.sleep(0.01)
    return []


def _probe_unix(leg: Leg) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "probe.sock")
        with (
            socket.socket(_AF_UNIX, socket.SOCK_DGRAM) as receiver,
            socket.socket(_AF_UNIX, socket.SOCK_DGRAM) as sender,
        ):
            receiver.bind(path)
            on = enable(receiver, *Feature)
            leg.enabled, leg.refused = frozenset(on), dict(on.refused)
            receiver.settimeout(_PROBE_TIMEOUT)
            with Path(path + ".fd").open("wb") as handle:
                send(sender, b"portmsg probe", path, controls=[FileDescriptors((handle.fileno(),))])
            message = recv(receiver)
            leg.messages.append(message)
            if message.fds is not None:
                message.fds.close()


def _value(feature: Feature, message: Message) -> str | None:  # noqa: PLR0911 - one case per feature
    if feature is Feature.PACKET_INFO and message.packet_info:
        return f"{message.packet_info.address} if={_interface_name(message.packet_info.interface)}"
    if feature is Feature.TRAFFIC_CLASS and message.traffic_class:
        tc = message.traffic_class
        return f"0x{tc.value:02x} (DSCP {tc.dscp}, {tc.ecn.name})"
    if feature is Feature.ECN and message.ecn is not None:
        return message.ecn.name
    if feature is Feature.HOP_LIMIT and message.hop_limit:
        return str(message.hop_limit.value)
    if feature is Feature.TIMESTAMP and message.timestamp:
        return f"{when(message.timestamp)} ({age_us(message.timestamp)} us ago)"
    if feature is Feature.CREDENTIALS and message.credentials:
        c = message.credentials
        return f"pid={c.pid} uid={c.uid} gid={c.gid}"
    if feature is Feature.SEGMENT_OFFLOAD and message.segment_size:
        return f"{message.segment_size.value} ({len(message.segments())} datagrams coalesced)"
    if feature is Feature.DROPS and message.drops:
        return f"{message.drops.count} dropped (a full buffer, provoked)"
    if feature is Feature.ORIGINAL_DESTINATION and message.original_destination:
        origin = message.original_destination
        return format_address((str(origin.address), origin.port))
    if feature is Feature.ERRORS and message.error:
        error = message.error
        source = error.origin.name if isinstance(error.origin, ErrorOrigin) else error.origin
        return f"{error.strerror} ({source} type {error.type} code {error.code}) from {error.offender}"
    return None


def _rows(leg: Leg) -> list[dict[str, Any]]:
    rows = []
    for feature in Feature:
        value = next((v for m in leg.messages if (v := _value(feature, m)) is not None), None)
        enabled = feature in leg.enabled
        if value is not None:
            why = None
        elif not leg.messages:
            why = "no datagram arrived"
        elif not enabled:
            why = leg.refused.get(feature, "not enabled")
        else:
            why = "enabled, but the OS delivered no such control"
        rows.append(
            {
                "transport": leg.name,
                "feature": feature.name,
                "enabled": enabled,
                "arrived": value is not None,
                "value": value,
                "why_not": why,
            }
        )
    return rows


def probe(*, as_json: bool = False) -> int:
    """Loopback self-test: print what this platform delivers; 1 when a round trip failed."""
    legs: list[tuple[Leg, Any]] = [
        (Leg("ipv4"), lambda leg: _probe_inet(leg, socket.AF_INET, "127.0.0.1", "127.0.0.1"))
    ]
    if socket.has_ipv6:
        legs.append((Leg("ipv6"), lambda leg: _probe_inet(leg, socket.AF_INET6, "::1", "::1")))
        legs.append((Leg("dual-stack v4"), lambda leg: _probe_inet(leg, socket.AF_INET6, "::", "127.0.0.1")))
    if _AF_UNIX != -1 and BACKEND == "posix":
        legs.append((Leg("unix dgram"), _probe_unix))
    for leg, run in legs:
        try:
            run(leg)
        except OSError as exc:
            leg.error = f"{type(exc).__name__}: {exc}"
    failed = [leg for leg, _ in legs if leg.error is not None or not leg.messages]
    header = {"portmsg": __version__, "backend": BACKEND, "platform": PLATFORM, "python": sys.version.split()[0]}
    rows = [row for leg, _ in legs for row in _rows(leg)]
    legs_out = [
        {"transport": leg.name, "ok": leg not in failed, "error": leg.error, "note": leg.note} for leg, _ in legs
    ]
    if as_json:
        print(json.dumps({**header, "ok": not failed, "transports": legs_out, "rows": rows}, indent=2))
    else:
        print(" ".join(f"{k}={v}" for k, v in header.items()))
        print(f"{'transport':<14} {'feature':<21} {'enabled':<8} {'arrived':<8} value / why not")
        for row in rows:
            enabled = "yes" if row["enabled"] else "no"
            arrived = "yes" if row["arrived"] else "no"
            shown = row["value"] if row["arrived"] else row["why_not"]
            print(f"{row['transport']:<14} {row['feature']:<21} {enabled:<8} {arrived:<8} {shown}")
        for leg, _ in legs:
            if leg.error or leg.note:
                print(f"{leg.name}: {leg.error or leg.note}")
        print("probe: ok" if not failed else f"probe: FAILED: {', '.join(leg.name for leg in failed)}")
    return 1 if failed else 0
