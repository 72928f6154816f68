"""`python -m portmsg`: probe and listen, as a user runs them."""

from __future__ import annotations

import json
import re
import shutil
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


def test_probe_prints_the_table_and_succeeds() -> None:
    result = _run("probe")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"backend={portmsg.BACKEND}" in result.stdout
    assert result.stdout.rstrip().endswith("probe: ok")
    for feature in ("PACKET_INFO", "TRAFFIC_CLASS", "HOP_LIMIT", "TIMESTAMP"):
        assert feature in result.stdout


def test_probe_json_reports_what_arrived_and_why_not() -> None:
    result = _run("probe", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    rows = {(r["transport"], r["feature"]): r for r in report["rows"]}
    for row in rows.values():
        assert row["enabled"] in (True, False)
        assert (row["value"] is None) == (row["why_not"] is not None), row
        if row["enabled"] and row["transport"] != "dual-stack v4":  # every feature enable() claims arrives
            assert row["arrived"], row
    if sys.platform.startswith("linux"):
        for feature in ("PACKET_INFO", "TRAFFIC_CLASS", "HOP_LIMIT", "TIMESTAMP", "SEGMENT_OFFLOAD"):
            assert rows[("ipv4", feature)]["arrived"], feature
            assert rows[("ipv6", feature)]["arrived"], feature
    assert rows[("ipv4", "CREDENTIALS")]["why_not"] == "does not apply to an AF_INET datagram socket"


@pytest.mark.skipif(not sys.platform.startswith("linux") or shutil.which("unshare") is None, reason="needs unshare -n")
def test_probe_fails_when_no_datagram_can_travel() -> None:
    """In a network namespace whose loopback is down, the self-test must fail, not print 'no' and exit 0."""
    result = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "portmsg", "probe"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=NEUTRAL_CWD,
    )
    if "unshare failed" in result.stderr or "Operation not permitted" in result.stderr:
        pytest.skip(f"this sandbox refuses a network namespace: {result.stderr.strip()}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "probe: FAILED: ipv4" in result.stdout
    assert "Network is unreachable" in result.stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("listen", "nonsense"), "the port is missing"),
        (("listen", "127.0.0.1:99999"), "the port must be 0-65535"),
        (("listen", "127.0.0.1:\u00b2"), "the port must be 0-65535"),
        (("listen", "::1"), "[::1]:PORT"),
        (("listen", "[::1"), "IPv6 address goes in brackets"),
        (("listen", "::1:5300"), "[::1]:5300 or [::1:5300]:PORT"),
        (("listen", "127.0.0.1:0", "--bufsize", "-1"), "buffer size of 1-65535"),
        (("listen", "127.0.0.1:0", "--count", "-1"), "1 or more"),
        (("echo", "127.0.0.1:0", "--count", "0"), "1 or more"),
        (("echo", "127.0.0.1"), "the port is missing"),
    ],
)
def test_bad_arguments_are_one_line_exit_2_before_binding(args: tuple[str, ...], expected: str) -> None:
    result = _run(*(a.encode().decode("unicode_escape") for a in args))
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_listen_port_in_use_is_one_line_exit_2() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        result = _run("listen", f"127.0.0.1:{taken.getsockname()[1]}")
    assert result.returncode == 2
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def _listen(*args: str, send: list[tuple[bytes, list[portmsg.Control]]], family: int = socket.AF_INET) -> list[dict]:
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    port = _free_port()
    bound = f"{host}:{port}" if family == socket.AF_INET else f"[{host}]:{port}"
    proc = _spawn("listen", bound, "--json", *args)
    try:
        assert proc.stderr is not None
        banner = proc.stderr.readline()
        assert f"listening on {bound}" in banner
        with socket.socket(family, socket.SOCK_DGRAM) as sender:
            for payload, controls in send:
                portmsg.send(sender, payload, (host, port), controls=controls)
                time.sleep(0.05)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return [json.loads(line) for line in out.splitlines()]


def test_listen_prints_one_json_line_per_datagram_with_readable_addresses() -> None:
    lines = _listen("--count", "2", send=[(b"one", []), (b"three", [])])
    assert [line["size"] for line in lines] == [3, 5]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", lines[0]["source"])
    assert lines[0]["destination"] in (None, "127.0.0.1")


def test_listen_shows_ipv6_addresses_in_brackets() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 here")
    lines = _listen("--count", "1", send=[(b"six", [])], family=socket.AF_INET6)
    assert re.fullmatch(r"\[::1\]:\d+", lines[0]["source"])


def test_listen_splits_a_coalesced_burst_into_one_line_per_datagram() -> None:
    if not hasattr(portmsg.native, "UDP_SEGMENT"):
        pytest.skip(f"no GSO sender on {sys.platform}")
    lines = _listen("--count", "1", send=[(b"a" * 300, [portmsg.SegmentSize(100)])])
    assert [(line["size"], line["burst"]) for line in lines] == [(100, 1), (100, 1), (100, 1)]
    if lines[0]["segment"] is not None:  # coalesced: say which piece each line is
        assert [line["segment"] for line in lines] == ["1/3", "2/3", "3/3"]


def test_listen_shows_the_real_length_of_a_cut_datagram_where_the_os_tells_it() -> None:
    """Linux (MSG_TRUNC as input) tells a cut datagram's real length; elsewhere `length` is null, never the buffer size."""
    (line,) = _listen("--count", "1", "--bufsize", "10", send=[(b"x" * 100, [])])
    expected = 100 if sys.platform.startswith("linux") else None
    assert (line["size"], line["length"], line["truncated"]) == (10, expected, True)


def test_help_describes_every_command() -> None:
    assert _run("--help").returncode == 0
    for command in ("probe", "listen", "echo"):
        result = _run(command, "--help")
        assert result.returncode == 0
        assert len(result.stdout.split("\n\n")) >= 3, result.stdout  # usage, description, options


def test_console_script_names_itself() -> None:
    script = Path(sys.executable).with_name("portmsg.exe" if sys.platform == "win32" else "portmsg")
    if not script.exists():
        pytest.skip(
            "portmsg is not installed with its console script here (the Wine leg unzips the wheel: pip, which writes console scripts, crashes under Wine 8)"
        )
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False, cwd=NEUTRAL_CWD)
    assert result.stdout.startswith("usage: portmsg ")


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
        assert line["ttl"] is None or line["ttl"] > 0  # echo --json shows the request's metadata


def test_echo_survives_a_broadcast_and_keeps_answering_from_the_address_asked() -> None:
    port = _free_port()
    proc = _spawn("echo", f"0.0.0.0:{port}", "--json", "--count", "2")
    try:
        assert proc.stderr is not None
        assert "echoing" in proc.stderr.readline()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(10)
            client.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            try:
                client.sendto(b"everyone", ("127.255.255.255", port))
            except OSError as exc:
                proc.kill()
                pytest.skip(f"{portmsg.PLATFORM} does not send to 127.255.255.255: {exc}")
            first = client.recvfrom(100)
            client.sendto(b"me", ("127.0.0.1", port))
            second = client.recvfrom(100)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert first[0] == b"everyone"
    assert second == (b"me", ("127.0.0.1", port))
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) == 2
    for line in lines:  # no reply failed (Wine: replies go out, without source selection)
        assert line["error"] is None or line["error"].startswith("EOPNOTSUPP"), line


def test_listen_shows_the_receive_time_as_a_time_and_an_age() -> None:
    (line,) = _listen("--count", "1", send=[(b"when", [])])
    if line["timestamp_ns"] is None:
        pytest.skip(f"no receive timestamps on {portmsg.PLATFORM} (probe says why)")
    assert line["age_us"] >= 0
    if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z", line["timestamp"]) is None:
        assert line["timestamp"].endswith("s on the performance counter")  # Windows' clock
