"""`python -m portmsg`: probe and listen, as a user runs them."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import portmsg

# Run from the tests folder: `-m` puts the working directory first on sys.path,
# and the source tree's portmsg/ (no compiled module) must not shadow the installed one.
NEUTRAL_CWD = Path(__file__).resolve().parent


def _run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "portmsg", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
        cwd=NEUTRAL_CWD,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spawn(*args: str) -> subprocess.Popen[str]:
    """`python -m portmsg ARGS` in the background, its output through pipes."""
    return subprocess.Popen(
        [sys.executable, "-m", "portmsg", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        cwd=NEUTRAL_CWD,
    )


def test_probe_prints_the_table() -> None:
    result = _run("probe")
    assert result.returncode == 0, result.stderr
    assert f"backend={portmsg.BACKEND}" in result.stdout
    for feature in ("PACKET_INFO", "TRAFFIC_CLASS", "HOP_LIMIT", "TIMESTAMP"):
        assert feature in result.stdout


def test_probe_json_reports_what_arrived() -> None:
    result = _run("probe", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = {(r["transport"], r["feature"]): r for r in report["rows"]}
    ipv4 = rows[("ipv4", "PACKET_INFO")]
    assert ipv4["enabled"] == ipv4["arrived"]
    if sys.platform.startswith("linux"):
        for feature in ("PACKET_INFO", "TRAFFIC_CLASS", "HOP_LIMIT", "TIMESTAMP", "SEGMENT_OFFLOAD"):
            assert rows[("ipv4", feature)]["arrived"], feature
            assert rows[("ipv6", feature)]["arrived"], feature


@pytest.mark.parametrize("address", ["nonsense", "127.0.0.1:99999", "no.such.host.invalid:5"])
def test_listen_bad_address_is_one_line_exit_2(address: str) -> None:
    result = _run("listen", address)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_listen_port_in_use_is_one_line_exit_2() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        result = _run("listen", f"127.0.0.1:{taken.getsockname()[1]}")
    assert result.returncode == 2
    assert "cannot listen" in result.stderr


def test_listen_prints_one_json_line_per_datagram() -> None:
    port = _free_port()
    proc = _spawn("listen", f"127.0.0.1:{port}", "--json", "--count", "2")
    try:
        assert proc.stderr is not None
        assert "listening" in proc.stderr.readline()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for payload in (b"one", b"three"):
                sender.sendto(payload, ("127.0.0.1", port))
                time.sleep(0.05)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["size"] for line in lines] == [3, 5]
    assert lines[0]["source"][0] == "127.0.0.1"
    if lines[0]["destination"] is not None:
        assert lines[0]["destination"] == "127.0.0.1"


def test_help_exits_zero() -> None:
    assert _run("--help").returncode == 0
    assert _run("listen", "--help").returncode == 0


def test_echo_answers_from_the_address_asked() -> None:
    port = _free_port()
    proc = _spawn("echo", f"0.0.0.0:{port}", "--json", "--count", "2")
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        assert "echoing" in banner
        replies = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(10)
            for destination in ("127.0.0.1", "127.0.0.2"):
                client.sendto(destination.encode(), (destination, port))
                replies.append(client.recvfrom(100))
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    lines = [json.loads(line) for line in out.splitlines()]
    assert [data for data, _ in replies] == [b"127.0.0.1", b"127.0.0.2"]
    for (_, source), line, destination in zip(replies, lines, ("127.0.0.1", "127.0.0.2"), strict=True):
        if line["reply_from"] is not None:  # the platform could select the source
            assert source == (destination, port)
