"""Command line: portmsg probe | listen HOST:PORT | echo HOST:PORT.

probe   loopback self-test: what this platform delivers (exit 1 when a round trip fails)
listen  print one line per datagram received on HOST:PORT, with its metadata
echo    answer each datagram from the address it was sent to
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import re
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import (
    BACKEND,
    PLATFORM,
    ErrorOrigin,
    Feature,
    FileDescriptors,
    Message,
    MsgFlag,
    PacketInfo,
    SegmentSize,
    __version__,
    enable,
    native,
    normalize,
    recv,
    recv_error,
    recvmsg_into,
    send,
)
from ._normalize import cast_flags

if TYPE_CHECKING:
    from collections.abc import Sequence

_AF_UNIX: int = getattr(socket, "AF_UNIX", -1)  # absent on Windows
_DERIVE_CAST = not hasattr(native, "MSG_BCAST")  # as recv() does: BCAST / MCAST from the destination
_TOS = 0xBA  # DSCP 46 (EF), ECN ECT(0): a value no default path sets
_PROBE_TIMEOUT = 2.0
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)


class UsageError(Exception):
    """A bad argument or an address that cannot be used: one line, exit 2."""


# -- arguments -----------------------------------------------------------------------


def parse_hostport(text: str) -> tuple[int, tuple[str, int]]:
    """HOST:PORT, [IPV6]:PORT or :PORT as (family, (host, port)); UsageError for anything else."""
    example = "expected HOST:PORT, e.g. 0.0.0.0:5300, [::]:5300 or [::1]:5300"
    family: int
    if text.startswith("["):
        host, sep, port_text = text[1:].partition("]:")
        if not sep or not _is_ip(host, 6):
            msg = f"{example}; not {text!r} (an IPv6 address goes in brackets, followed by :PORT)"
            raise UsageError(msg)
        family = socket.AF_INET6
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep:
            msg = f"{example}; not {text!r} (the port is missing)"
            raise UsageError(msg)
        if ":" in host:
            meant = [f"[{host}]:{port_text}"] if _is_ip(host, 6) else []
            meant += [f"[{text}]:PORT"] if _is_ip(text, 6) else []
            msg = (
                f"{example}; not {text!r}: an IPv6 address goes in brackets ({' or '.join(meant) or '[ADDRESS]:PORT'})"
            )
            raise UsageError(msg)
        family = 0
    if not _PORT.fullmatch(port_text) or int(port_text) > 0xFFFF:  # noqa: PLR2004
        msg = f"{example}; not {text!r} (the port must be 0-65535)"
        raise UsageError(msg)
    port = int(port_text)
    if family == socket.AF_INET6:
        return family, (host, port)
    if host == "" or _is_ip(host, 4):
        return socket.AF_INET, (host or "0.0.0.0", port)  # noqa: S104 - binding all interfaces is what ':PORT' asks
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        msg = f"cannot resolve {host!r}: {exc.strerror}"
        raise UsageError(msg) from None
    resolved_family, _, _, _, address = infos[0]
    return resolved_family, (str(address[0]), int(address[1]))


def _is_ip(text: str, version: int) -> bool:
    try:
        return ip_address(text).version == version
    except ValueError:
        return False


def _count(text: str) -> int:
    """--count: a whole number of datagrams, 1 or more."""
    if not re.fullmatch(r"[0-9]{1,18}", text, re.ASCII) or int(text) < 1:
        msg = f"expected a whole number of datagrams, 1 or more, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


def _bufsize(text: str) -> int:
    """--bufsize: bytes, 1 to 65535."""
    if not re.fullmatch(r"[0-9]{1,6}", text, re.ASCII) or not 1 <= int(text) <= 0xFFFF:  # noqa: PLR2004
        msg = f"expected a buffer size of 1-65535 bytes, not {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(text)


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
        return f"{message.timestamp.ns} ns"
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


# -- listen and echo ---------------------------------------------------------------------


def _bound_socket(hostport: str) -> socket.socket:
    """A UDP socket bound to HOST:PORT (dual-stack for [::]); UsageError if it cannot be."""
    family, address = parse_hostport(hostport)
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        _set_quietly(sock, "IPPROTO_IPV6", "IPV6_V6ONLY", 0)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        msg = f"cannot listen on {hostport}: {exc.strerror or exc}"
        raise UsageError(msg) from None
    return sock


def _receive(sock: socket.socket, buffer: bytearray) -> tuple[Message, bytes, int | None]:
    """One datagram, its bytes, and its real length where the OS tells it (Linux with MSG_TRUNC)."""
    # Only Linux, asked with MSG_TRUNC as input, returns a cut datagram's real length.
    real_length = BACKEND == "posix" and sys.platform.startswith("linux") and hasattr(native, "MSG_TRUNC")
    nbytes, ancdata, native_flags, address = recvmsg_into(sock, [buffer], 4096, native.MSG_TRUNC if real_length else 0)
    controls = normalize(ancdata)
    flags = MsgFlag.from_native(native_flags) | (cast_flags(controls) if _DERIVE_CAST else MsgFlag(0))
    message = Message(bytes(buffer[: min(nbytes, len(buffer))]), address, flags, controls)
    return message, message.data, nbytes if real_length and message.truncated else None


def listen(hostport: str, *, as_json: bool = False, count: int | None = None, bufsize: int = 65535) -> int:
    """Print one line per datagram received on HOST:PORT (a coalesced burst: one line per datagram in it)."""
    with _bound_socket(hostport) as sock:
        on = enable(sock, *(f for f in Feature if f is not Feature.ERRORS))  # listen sends nothing
        print(
            f"# listening on {format_address(sock.getsockname())} ({BACKEND}); enabled: "
            f"{', '.join(sorted(f.name for f in on)) or 'none'}",
            file=sys.stderr,
            flush=True,
        )
        buffer = bytearray(bufsize)
        received = burst = 0
        while count is None or received < count:
            message, _, length = _receive(sock, buffer)
            burst += 1
            pieces = message.segments()
            for index, piece in enumerate(pieces):
                summary = describe(message, piece, length)
                summary["burst"] = burst
                summary["segment"] = f"{index + 1}/{len(pieces)}" if message.segment_size is not None else None
                _print(summary, as_json=as_json)
            received += 1
    return 0


def echo(hostport: str, *, as_json: bool = False, count: int | None = None) -> int:
    """Answer each datagram with its own data, from the address it arrived on."""
    with _bound_socket(hostport) as sock:
        on = enable(sock, Feature.PACKET_INFO, Feature.TRAFFIC_CLASS, Feature.HOP_LIMIT)
        print(
            f"# echoing on {format_address(sock.getsockname())} ({BACKEND}); source selection: "
            f"{'on' if Feature.PACKET_INFO in on else 'unavailable'}",
            file=sys.stderr,
            flush=True,
        )
        answered = 0
        use_controls = Feature.PACKET_INFO in on
        while count is None or answered < count:
            try:
                message = recv(sock)
            except (ConnectionResetError, ConnectionRefusedError) as exc:  # an ICMP error for an earlier reply
                print(f"# {exc}", file=sys.stderr, flush=True)
                continue
            summary = describe(message)
            summary["reply_from"], summary["error"] = _answer(sock, message, use_controls=use_controls)
            if summary["error"] and "EOPNOTSUPP" in summary["error"]:
                use_controls = False
            answered += 1
            _print(summary, as_json=as_json)
    return 0


def _answer(sock: socket.socket, message: Message, *, use_controls: bool) -> tuple[str | None, str | None]:
    """Send the reply; (the source it was pinned to or None, what went wrong or None).  Never raises OSError."""
    controls = message.reply_controls() if use_controls else []
    source = next((str(c.address) for c in controls if isinstance(c, PacketInfo)), None)
    try:
        try:
            send(sock, message.data, message.address, controls=controls)
        except OSError as exc:
            if not controls or exc.errno != errno.EOPNOTSUPP:
                raise
            print(f"# {exc.strerror}: replying without source selection", file=sys.stderr, flush=True)
            send(sock, message.data, message.address)
            return None, "EOPNOTSUPP: controls cannot be sent here; replied without source selection"
    except OSError as exc:  # this reply cannot go out: say so, serve the next datagram
        print(f"# no reply to {format_address(message.address)}: {exc}", file=sys.stderr, flush=True)
        return None, f"{type(exc).__name__}: {exc}"
    unspecified = source is not None and ip_address(source) in (IPv4Address(0), IPv6Address(0))
    return (None if unspecified else source), None


# -- main ------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    prog = "portmsg" if Path(sys.argv[0]).stem == "portmsg" else "python -m portmsg"
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Datagrams with their ancillary data, on every platform.",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"portmsg {__version__} ({BACKEND}, {PLATFORM})")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p_probe = sub.add_parser(
        "probe",
        help="loopback self-test",
        description="Send datagrams over IPv4, IPv6, dual-stack and (POSIX) Unix sockets on loopback with every "
        "feature enabled, and show what arrived.  Exit status 1 when a round trip failed.",
    )
    p_probe.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    p_listen = sub.add_parser(
        "listen",
        help="print each datagram received on HOST:PORT",
        description="Bind HOST:PORT (0.0.0.0:PORT, [::]:PORT for dual-stack), enable every feature, and print one "
        "line per datagram: a coalesced (GRO) burst gives one line per datagram in it.",
    )
    p_listen.add_argument("address", metavar="HOST:PORT", help="address to bind: 0.0.0.0:5300, [::]:5300, [::1]:5300")
    p_listen.add_argument("--json", action="store_true", help="print one JSON object per datagram")
    p_listen.add_argument("--count", type=_count, default=None, help="stop after N datagrams (bursts)")
    p_listen.add_argument("--bufsize", type=_bufsize, default=65535, help="bytes read per datagram (1-65535)")
    p_echo = sub.add_parser(
        "echo",
        help="answer each datagram from the address it was sent to",
        description="Bind HOST:PORT and send each datagram back from the address it arrived on (a multi-homed "
        "server in one command); a reply that cannot go out is reported and the next datagram served.",
    )
    p_echo.add_argument("address", metavar="HOST:PORT", help="address to bind: 0.0.0.0:7, [::]:7")
    p_echo.add_argument("--json", action="store_true", help="print one JSON object per datagram")
    p_echo.add_argument("--count", type=_count, default=None, help="stop after N datagrams")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `portmsg` and `python -m portmsg`."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "probe":
            return probe(as_json=args.json)
        if args.command == "echo":
            return echo(args.address, as_json=args.json, count=args.count)
        return listen(args.address, as_json=args.json, count=args.count, bufsize=args.bufsize)
    except UsageError as exc:
        print(f"portmsg: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `| head`: stop quietly, as other CLI tools do
        sys.stdout = open(os.devnull, "w")  # noqa: PTH123, SIM115 - swallow the final flush
        return 0


if __name__ == "__main__":
    sys.exit(main())
