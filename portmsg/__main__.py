"""Command line: `python -m portmsg probe | listen HOST:PORT | echo HOST:PORT`."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import BACKEND, PLATFORM, Feature, Message, RawControl, SegmentSize, __version__, enable, native, recv, send

if TYPE_CHECKING:
    from collections.abc import Sequence

_AF_UNIX: int = getattr(socket, "AF_UNIX", -1)  # absent on Windows
_TOS = 0xBA  # DSCP 46 (EF), ECN ECT(0): a value no default path sets
_PROBE_TIMEOUT = 2.0


class UsageError(Exception):
    """A bad argument or an address that cannot be used: one line, exit 2."""


def _parse_hostport(text: str) -> tuple[int, tuple[str, int]]:
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 0xFFFF:  # noqa: PLR2004
        msg = f"expected HOST:PORT (e.g. 0.0.0.0:5353 or [::]:5353), not {text!r}"
        raise UsageError(msg)
    if host.startswith("[") and host.endswith("]"):
        return socket.AF_INET6, (host[1:-1], int(port_text))
    try:
        infos = socket.getaddrinfo(host or "0.0.0.0", int(port_text), 0, socket.SOCK_DGRAM)  # noqa: S104
    except socket.gaierror as exc:
        msg = f"cannot resolve {host!r}: {exc.strerror}"
        raise UsageError(msg) from None
    family, _, _, _, address = infos[0]
    return family, (str(address[0]), int(address[1]))


def _interface_name(index: int) -> str:
    try:
        return socket.if_indextoname(index)
    except (OSError, AttributeError):
        return str(index)


def describe(message: Message) -> dict[str, Any]:
    """A JSON-ready summary of one received datagram."""
    info, tc, hop, ts = message.packet_info, message.traffic_class, message.hop_limit, message.timestamp
    return {
        "source": message.address if isinstance(message.address, (str, type(None))) else list(message.address[:2]),
        "destination": None if info is None else str(info.address),
        "interface": None if info is None else _interface_name(info.interface),
        "tos": None if tc is None else tc.value,
        "ecn": None if tc is None else tc.ecn.name,
        "ttl": None if hop is None else hop.value,
        "timestamp_ns": None if ts is None else ts.ns,
        "size": len(message.data),
        "truncated": message.truncated,
        "flags": [flag.name for flag in type(message.flags) if flag & message.flags],
    }


# -- probe --------------------------------------------------------------------------


def _set_quietly(sock: socket.socket, level: str, option: str, value: int) -> bool:
    """Set an option if the platform has it; True if it took."""
    if hasattr(native, level) and hasattr(native, option):
        with contextlib.suppress(OSError):
            sock.setsockopt(getattr(native, level), getattr(native, option), value)
            return True
    return False


def _probe_inet(family: int, bind: str, target: str) -> tuple[frozenset[Feature], list[Message], str | None]:
    with (
        socket.socket(family, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_INET if ":" not in target else socket.AF_INET6, socket.SOCK_DGRAM) as sender,
    ):
        if family == socket.AF_INET6 and ":" not in target:
            _set_quietly(receiver, "IPPROTO_IPV6", "IPV6_V6ONLY", 0)
        receiver.bind((bind, 0))
        enabled = enable(receiver, *Feature)
        receiver.settimeout(_PROBE_TIMEOUT)
        tos_option = "IP_TOS" if sender.family == socket.AF_INET else "IPV6_TCLASS"
        level = "IPPROTO_IP" if sender.family == socket.AF_INET else "IPPROTO_IPV6"
        note = None if _set_quietly(sender, level, tos_option, _TOS) else f"the sender could not set {tos_option}"
        destination = (target, receiver.getsockname()[1])
        sender.sendto(b"portmsg probe", destination)
        try:
            messages = [recv(receiver)]
            if Feature.SEGMENT_OFFLOAD in enabled and hasattr(native, "UDP_SEGMENT"):
                # A GSO burst (3 x 100 bytes) shows whether the receiver coalesces it.
                send(sender, b"g" * 300, destination, controls=[SegmentSize(100)])
                messages.append(recv(receiver))
        except OSError as exc:
            return enabled, [], f"{type(exc).__name__}: {exc}"
        return enabled, messages, note


def _probe_unix() -> tuple[frozenset[Feature], list[Message], str | None]:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "probe.sock")
        with (
            socket.socket(_AF_UNIX, socket.SOCK_DGRAM) as receiver,
            socket.socket(_AF_UNIX, socket.SOCK_DGRAM) as sender,
        ):
            receiver.bind(path)
            enabled = enable(receiver)
            receiver.settimeout(_PROBE_TIMEOUT)
            from . import FileDescriptors, send  # noqa: PLC0415

            with open(path + ".fd", "wb") as handle:  # noqa: PTH123
                send(sender, b"portmsg probe", path, controls=[FileDescriptors((handle.fileno(),))])
            try:
                message = recv(receiver)
            except OSError as exc:
                return enabled, [], f"{type(exc).__name__}: {exc}"
            if message.fds is not None:
                message.fds.close()
            return enabled, [message], None


def _value(feature: Feature, messages: list[Message]) -> str | None:
    for message in messages:
        value = _value_in(feature, message)
        if value is not None:
            return value
    return None


def _value_in(feature: Feature, message: Message) -> str | None:  # noqa: PLR0911
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
    return None


def _other(message: Message) -> str:
    """What else arrived: descriptors, undecoded controls, flags."""
    extra = [f"RawControl(level={c.level}, type={c.type})" for c in message.controls if isinstance(c, RawControl)]
    if message.fds is not None:
        extra.insert(0, f"FileDescriptors x{len(message.fds)}")
    return ", ".join(extra) or f"flags={message.flags!r}"


def probe(*, as_json: bool = False) -> int:
    """Loopback self-test: print what this platform delivers."""
    transports: list[tuple[str, Any]] = [
        ("ipv4", lambda: _probe_inet(socket.AF_INET, "127.0.0.1", "127.0.0.1")),
    ]
    if socket.has_ipv6:
        transports.append(("ipv6", lambda: _probe_inet(socket.AF_INET6, "::1", "::1")))
        transports.append(("dual-stack v4", lambda: _probe_inet(socket.AF_INET6, "::", "127.0.0.1")))
    if _AF_UNIX != -1 and BACKEND == "posix":
        transports.append(("unix dgram", _probe_unix))
    rows = []
    for transport, run in transports:
        try:
            enabled, messages, error = run()
        except OSError as exc:
            enabled, messages, error = frozenset(), [], f"{type(exc).__name__}: {exc}"
        for feature in Feature:
            value = _value(feature, messages)
            rows.append(
                {
                    "transport": transport,
                    "feature": feature.name,
                    "enabled": feature in enabled,
                    "arrived": value is not None,
                    "value": value,
                }
            )
        rows.append(
            {
                "transport": transport,
                "feature": "(other)",
                "enabled": None,
                "arrived": bool(messages),
                "value": "; ".join(x for x in (error, messages and _other(messages[0])) if x),
            }
        )
    header = {
        "portmsg": __version__,
        "backend": BACKEND,
        "platform": PLATFORM,
        "python": sys.version.split()[0],
    }
    if as_json:
        print(json.dumps({**header, "rows": rows}, indent=2))
        return 0
    print(" ".join(f"{k}={v}" for k, v in header.items()))
    print(f"{'transport':<14} {'feature':<16} {'enabled':<8} {'arrived':<8} value")
    for row in rows:
        enabled = "" if row["enabled"] is None else ("yes" if row["enabled"] else "no")
        arrived = "yes" if row["arrived"] else "no"
        print(f"{row['transport']:<14} {row['feature']:<16} {enabled:<8} {arrived:<8} {row['value'] or ''}")
    return 0


# -- listen ---------------------------------------------------------------------------


def _bound_socket(hostport: str) -> socket.socket:
    """A UDP socket bound to HOST:PORT (dual-stack for [::]); UsageError if it cannot be."""
    family, address = _parse_hostport(hostport)
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


def _print_summary(summary: dict[str, Any], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary), flush=True)
    else:
        print(" ".join(f"{k}={v}" for k, v in summary.items() if v is not None and v != []), flush=True)


def listen(hostport: str, *, as_json: bool = False, count: int | None = None, bufsize: int = 65535) -> int:
    """Print one line per datagram received on HOST:PORT."""
    with _bound_socket(hostport) as sock:
        enabled = enable(sock)
        bound = sock.getsockname()
        print(
            f"# listening on {bound[0]}:{bound[1]} ({BACKEND}); enabled: "
            f"{', '.join(sorted(f.name for f in enabled)) or 'none'}",
            file=sys.stderr,
            flush=True,
        )
        received = 0
        while count is None or received < count:
            _print_summary(describe(recv(sock, bufsize)), as_json=as_json)
            received += 1
    return 0


def echo(hostport: str, *, as_json: bool = False, count: int | None = None) -> int:
    """Answer each datagram with its own data, from the address it arrived on."""
    with _bound_socket(hostport) as sock:
        enabled = enable(sock, Feature.PACKET_INFO)
        bound = sock.getsockname()
        print(
            f"# echoing on {bound[0]}:{bound[1]} ({BACKEND}); source selection: {'on' if enabled else 'unavailable'}",
            file=sys.stderr,
            flush=True,
        )
        answered = 0
        use_controls = bool(enabled)
        while count is None or answered < count:
            try:
                message = recv(sock)
            except (ConnectionResetError, ConnectionRefusedError) as exc:  # an ICMP error for an earlier reply
                print(f"# {exc}", file=sys.stderr, flush=True)
                continue
            summary = describe(message)
            summary["reply_from"] = summary["error"] = None
            controls = message.reply_controls() if use_controls else []
            try:
                try:
                    send(sock, message.data, message.address, controls=controls)
                except OSError as exc:
                    if not controls or exc.errno != errno.EOPNOTSUPP:
                        raise
                    print(f"# {exc.strerror}: replying without source selection", file=sys.stderr, flush=True)
                    use_controls, controls = False, []
                    send(sock, message.data, message.address)
            except OSError as exc:  # this reply cannot go out: say so, serve the next datagram
                summary["error"] = f"{type(exc).__name__}: {exc}"
                print(f"# no reply to {message.address}: {exc}", file=sys.stderr, flush=True)
            else:
                summary["reply_from"] = str(controls[0].address) if controls else None  # type: ignore[union-attr]
            answered += 1
            _print_summary(summary, as_json=as_json)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m portmsg`."""
    parser = argparse.ArgumentParser(prog="python -m portmsg", description=__doc__)
    parser.add_argument("--version", action="version", version=f"portmsg {__version__} ({BACKEND})")
    sub = parser.add_subparsers(dest="command", required=True)
    p_probe = sub.add_parser("probe", help="loopback self-test: print what this platform delivers")
    p_probe.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p_listen = sub.add_parser("listen", help="print one line per datagram received on HOST:PORT")
    p_listen.add_argument("address", metavar="HOST:PORT", help="address to bind, e.g. 0.0.0.0:5353 or [::]:5353")
    p_listen.add_argument("--json", action="store_true", help="print one JSON object per datagram")
    p_listen.add_argument("--count", type=int, default=None, help="stop after N datagrams")
    p_listen.add_argument("--bufsize", type=int, default=65535, help="largest datagram to read whole")
    p_echo = sub.add_parser("echo", help="answer each datagram from the address it arrived on")
    p_echo.add_argument("address", metavar="HOST:PORT", help="address to bind, e.g. 0.0.0.0:7 or [::]:7")
    p_echo.add_argument("--json", action="store_true", help="print one JSON object per datagram")
    p_echo.add_argument("--count", type=int, default=None, help="stop after N datagrams")
    args = parser.parse_args(argv)
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
