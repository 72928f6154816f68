"""The one round-trip helper and socket factories every behaviour test uses.

These tests run unchanged on every backend (Linux natively, Windows under
Wine).  They ask `portmsg.enable()` what the platform offers instead of
checking sys.platform, and skip with the library's own answer when a
feature is absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

import portmsg
from portmsg import Feature, Message, native

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LOOPBACK = {socket.AF_INET: "127.0.0.1", socket.AF_INET6: "::1"}
TIMEOUT = 5.0


def _ipv6_works() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


FAMILIES = [socket.AF_INET] + ([socket.AF_INET6] if _ipv6_works() else [])


@dataclass
class Pair:
    """A bound receiver and a sender on loopback."""

    receiver: socket.socket
    sender: socket.socket
    family: int

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.receiver.getsockname()[:2]
        return host, port

    def send(self, payload: bytes = b"ping") -> None:
        self.sender.sendto(payload, self.address)

    def enable(self, *features: Feature) -> frozenset[Feature]:
        return portmsg.enable(self.receiver, *features)

    def require(self, *features: Feature) -> None:
        """Enable features on the receiver; skip with the library's own report if one is missing."""
        require(self.receiver, *features)

    def roundtrip(self, payload: bytes = b"ping", **recv_args: object) -> Message:
        """Send payload to the receiver and receive it with portmsg.recv."""
        self.send(payload)
        return portmsg.recv(self.receiver, **recv_args)  # type: ignore[arg-type]


def require(sock: socket.socket, *features: Feature) -> None:
    """Enable features on sock; skip with the library's own report if one is missing."""
    on = portmsg.enable(sock, *features)
    missing = [f.name for f in features if f not in on]
    if missing:
        pytest.skip(f"portmsg.enable() reports {', '.join(missing)} unavailable on backend {portmsg.BACKEND}")


@contextlib.contextmanager
def udp_pair(family: int, *, bind: str | None = None) -> Iterator[Pair]:
    receiver = socket.socket(family, socket.SOCK_DGRAM)
    sender = socket.socket(family, socket.SOCK_DGRAM)
    try:
        receiver.bind((bind if bind is not None else LOOPBACK[family], 0))
        sender.bind((LOOPBACK[family], 0))
        receiver.settimeout(TIMEOUT)
        sender.settimeout(TIMEOUT)
        yield Pair(receiver, sender, family)
    finally:
        receiver.close()
        sender.close()


def send_option(family: int, what: str) -> tuple[int, int]:
    """(level, option) that sets the traffic class ("tclass") or hop limit ("hops") a socket sends with."""
    v4 = family == socket.AF_INET
    if what == "tclass":
        return (socket.IPPROTO_IP, native.IP_TOS) if v4 else (native.IPPROTO_IPV6, native.IPV6_TCLASS)
    return (socket.IPPROTO_IP, native.IP_TTL) if v4 else (native.IPPROTO_IPV6, native.IPV6_UNICAST_HOPS)


def send_with_controls(sock: socket.socket, data: bytes, address: object, controls: list) -> int:
    """portmsg.send, skipping with the library's reason where it refuses to send controls (Wine)."""
    import errno

    try:
        return portmsg.send(sock, data, address, controls=controls)
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            pytest.skip(str(exc))
        raise


def dual_stack_socket() -> socket.socket:
    """An AF_INET6 socket with IPV6_V6ONLY off, bound to [::]; skip where that is refused."""
    if socket.AF_INET6 not in FAMILIES:
        pytest.skip("IPv6 is not available on this host")
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(("::", 0))
    except OSError as exc:
        sock.close()
        pytest.skip(f"this platform refuses a dual-stack socket: {exc}")
    sock.settimeout(TIMEOUT)
    return sock


def walk(control: bytes) -> list[tuple[int, int, int, int]]:
    """Run the compiled C walker over raw control bytes: (level, type, offset, length) records."""
    from portmsg._api import IMPL
    from portmsg._report import RECORD, records_room

    ffi, lib = IMPL.ffi, IMPL.lib
    data = bytes(control)
    room = records_room(len(data), portmsg.CMSG_LEN(0))
    records = ffi.new("long long[]", RECORD * room)
    n = lib.pm_walk(ffi.from_buffer(data), len(data), records, room)
    flat = ffi.unpack(records, RECORD * n)
    return [tuple(flat[i : i + RECORD]) for i in range(0, RECORD * n, RECORD)]  # type: ignore[misc]


def in_namespace(script: str, *args: str, setup: str = "ip link set lo up", cwd: object = None) -> str:
    """Run a Python script in a network namespace of its own (after the shell `setup`); its stdout.

    Skips, saying why, where unshare(1) or ip(8) is missing or namespaces cannot be made;
    fails with the script's stderr when it fails.
    """
    import shutil
    import subprocess
    import sys
    import tempfile

    if not (shutil.which("unshare") and shutil.which("ip")):
        pytest.skip("needs unshare(1) and ip(8) for a network namespace of its own (apt: util-linux, iproute2)")
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True, check=False)
    if probe.returncode:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.strip()}")
    shell = f'{setup} && exec "$0" -c "$@"'
    run = subprocess.run(
        ["unshare", "-n", "sh", "-c", shell, sys.executable, script, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=cwd or tempfile.gettempdir(),  # python -c puts its directory first on sys.path: never a source tree
    )
    assert run.returncode == 0, run.stderr
    return run.stdout


def certificate(tmp_path: Path) -> tuple[str, str]:
    """A self-signed certificate and key for the QUIC server, made here."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "portmsg test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


class DnsResponder(asyncio.DatagramProtocol):
    """Answers every A query with ANSWER, through whatever transport it is given (dnspython builds the reply)."""

    ANSWER = "192.0.2.1"

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        import dns.message
        import dns.rrset

        query = dns.message.from_wire(data)
        response = dns.message.make_response(query)
        response.answer.append(dns.rrset.from_text(query.question[0].name, 60, "IN", "A", self.ANSWER))
        self.transport.sendto(response.to_wire(), addr)


@contextlib.contextmanager
def mixed_senders(pair: Pair) -> Iterator[list[socket.socket]]:
    """300 senders (more than the batch index's 256 sender slots), with 60 traffic classes.

    With and without a cut that is 120 control sets and flags: more than the index's 64 control slots.
    """
    features = pair.enable(Feature.PACKET_INFO, Feature.TRAFFIC_CLASS)
    level, option = send_option(pair.family, "tclass")
    senders: list[socket.socket] = []
    try:
        for k in range(300):
            sock = socket.socket(pair.family, socket.SOCK_DGRAM)
            senders.append(sock)
            sock.bind((LOOPBACK[pair.family], 0))
            if Feature.TRAFFIC_CLASS in features:
                try:
                    sock.setsockopt(level, option, (k % 60) << 2)
                except OSError:  # Wine: no IPV6_TCLASS on a sending socket; senders and cuts still vary
                    features -= {Feature.TRAFFIC_CLASS}
        # Runs of one sender, alternating pairs, and every sender once: each case of the C side's
        # "as the datagram before" marks and index tables comes up.
        yield [senders[0]] * 40 + [senders[k % 2] for k in range(40)] + senders + senders[::-1]
    finally:
        for sock in senders:
            sock.close()


def send_mixed(pair: Pair, chunk: list[socket.socket], start: int) -> None:
    """Datagram i of the traffic (from chunk's senders, numbered from start): sizes 0-259 bytes."""
    for i, sock in enumerate(chunk, start):
        sock.sendto(bytes([i % 251]) * ((i * 37) % 260), pair.address)
