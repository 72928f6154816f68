"""Command line: portmsg probe | listen HOST:PORT | echo HOST:PORT.

probe   loopback self-test: what this platform delivers (exit 1 when a round trip fails)
listen  print one line per datagram received on HOST:PORT, with its metadata
echo    answer each datagram from the address it was sent to
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import socket
import sys
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import TYPE_CHECKING

from . import (
    BACKEND,
    PLATFORM,
    Feature,
    Message,
    MsgFlag,
    PacketInfo,
    __version__,
    enable,
    native,
    normalize,
    recv,
    recvmsg_into,
    send,
)
from ._cli_probe import _print, _set_quietly, describe, format_address, probe
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
