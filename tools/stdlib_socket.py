"""CPython's own test_socket against portmsg's Level 1.

    python tools/stdlib_socket.py check [--no-baseline]
    python tools/stdlib_socket.py run stdlib|portmsg|canary

`run` installs thin wrappers in place of socket.socket.recvmsg /
recvmsg_into / sendmsg and socket.CMSG_LEN / CMSG_SPACE *before*
test.test_socket is imported (its class gates are evaluated at import, so on
Windows, whose stdlib has none of these, the classes appear), runs every
test class about them, and prints one JSON object: each test's outcome and
how many wrapper calls it made.  Modes: `stdlib` (no wrappers: the
baseline), `portmsg` (the wrappers call portmsg), `canary` (the wrappers
raise, so every test that calls one must fail).

`check` runs the modes in child processes of this interpreter and fails
unless (1) with portmsg exactly the tests pass that pass with the stdlib
(skipped with --no-baseline, where the stdlib has no recvmsg: Windows), (2)
every test that called a wrapper fails in canary mode, proving the wrappers
are what ran, and (3) enough tests called them to mean something.  Under
Wine, tests that fail for Wine's own gaps are listed in WINE_GAPS with the
evidence, and must fail there: a gap that closes is reported too.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from typing import Any

SELECT = re.compile(
    r"(Sendmsg|Recvmsg|SCMRights).*Test$|^CmsgMacroTests$|^SendRecvFdsTests$|^Interrupted(Recv|Send)TimeoutTest$"
)
# Tests that must call a wrapper for the run to mean something: Linux runs UDP, UDP6, UDPLITE,
# TCP, Unix and SCM_RIGHTS classes; Windows has no AF_UNIX, UDPLITE or RFC 3542 names.
MIN_CALLING = {True: 300, False: 100}
CLASS_TIMEOUT = 30.0  # seconds one test class may take in canary mode before it counts as hung

# Tests that fail under Wine for Wine's own reasons, with what was measured (Wine 8.0, CPython 3.13).
_SENDS = (
    "Wine accepts control messages on WSASendMsg and drops them: portmsg refuses such a send "
    "(EOPNOTSUPP) rather than send without them"
)
_CUT = (
    "when the control buffer cannot hold every control message, Wine fails WSARecvMsg with WSAEMSGSIZE "
    "and MSG_CTRUNC and delivers none of them (Windows and Linux deliver the first ones whole)"
)
WINE_GAPS: dict[str, str] = {
    f"test.test_socket.{kind}RFC3542AncillaryUDP6Test.{test}": why
    for kind in ("Recvmsg", "RecvmsgInto")
    for test, why in (
        ("testOddCmsgSize", _SENDS),
        ("testSetHopLimit", _SENDS),
        ("testSetTrafficClassAndHopLimit", _SENDS),
        ("testSecondCmsgTrunc0", _CUT),
        ("testSecondCmsgTrunc1", _CUT),
        ("testSecondCmsgTrunc2Int", _CUT),
        ("testSecondCmsgTruncLen0Minus1", _CUT),
        ("testSecondCmsgTruncInData", _CUT),
    )
}

_current = ["(none)"]
_calls: dict[str, int] = {}


class _Canary(Exception):  # noqa: N818 - a marker, not an error condition
    """Raised by the wrappers in canary mode."""


def _install(mode: str) -> None:
    """Put portmsg (or the canary) behind the socket methods test_socket calls."""
    # asyncio decides at import whether socket.socket has sendmsg and, if so, asks os.sysconf for
    # SC_IOV_MAX, which Windows lacks: a test_socket that imports it after the wrappers are on (Debian
    # 13's 3.13.5 does, through unittest.mock) would fail there.  Imported first, it sees the stdlib as is.
    import asyncio  # noqa: F401, PLC0415

    import portmsg  # noqa: PLC0415 - only the wrapped modes need it

    def count() -> None:
        _calls[_current[0]] = _calls.get(_current[0], 0) + 1
        if mode == "canary":
            raise _Canary

    def recvmsg(self: socket.socket, *args: Any) -> Any:
        count()
        return portmsg.recvmsg(self, *args)

    def recvmsg_into(self: socket.socket, *args: Any) -> Any:
        count()
        return portmsg.recvmsg_into(self, *args)

    def sendmsg(self: socket.socket, *args: Any) -> Any:
        count()
        return portmsg.sendmsg(self, *args)

    def cmsg_len(*args: Any) -> Any:
        count()
        return portmsg.CMSG_LEN(*args)

    def cmsg_space(*args: Any) -> Any:
        count()
        return portmsg.CMSG_SPACE(*args)

    socket.socket.recvmsg = recvmsg  # type: ignore[method-assign,assignment]
    socket.socket.recvmsg_into = recvmsg_into  # type: ignore[method-assign,assignment]
    socket.socket.sendmsg = sendmsg  # type: ignore[method-assign,assignment]
    socket.CMSG_LEN = cmsg_len  # type: ignore[assignment,attr-defined,unused-ignore]
    socket.CMSG_SPACE = cmsg_space  # type: ignore[assignment,attr-defined,unused-ignore]
    # The constants test_socket asks the socket module for, where the platform's stdlib lacks them.
    for name, value in portmsg.native.CONSTANTS.items():
        if name.startswith(("SCM_", "MSG_", "IP_", "IPV6_", "SO_")) and not hasattr(socket, name):
            setattr(socket, name, value)
    # RFC 3542's IPV6_RECVHOPLIMIT is Windows' IPV6_HOPLIMIT (the option that enables the control is
    # the control's own name there): aliased, so the RFC 3542 classes (hop limit and truncation tests) run.
    if not hasattr(socket, "IPV6_RECVHOPLIMIT") and hasattr(portmsg.native, "IPV6_HOPLIMIT"):
        socket.IPV6_RECVHOPLIMIT = portmsg.native.IPV6_HOPLIMIT  # type: ignore[attr-defined]


class _Result(unittest.TestResult):
    def __init__(self) -> None:
        super().__init__()
        self.outcomes: dict[str, str] = {}

    def startTest(self, test: unittest.TestCase) -> None:  # noqa: N802 - unittest's name
        _current[0] = test.id()
        super().startTest(test)

    def addSuccess(self, test: unittest.TestCase) -> None:  # noqa: N802
        self.outcomes[test.id()] = "pass"

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:  # noqa: N802
        self.outcomes[test.id()] = "fail: " + self._exc_info_to_string(err, test).strip().splitlines()[-1][:300]

    def addError(self, test: unittest.TestCase, err: Any) -> None:  # noqa: N802
        self.outcomes[test.id()] = "error: " + self._exc_info_to_string(err, test).strip().splitlines()[-1][:300]

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:  # noqa: N802
        self.outcomes[test.id()] = "skip: " + reason

    def addExpectedFailure(self, test: unittest.TestCase, err: Any) -> None:  # noqa: N802, ARG002
        self.outcomes[test.id()] = "xfail"

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:  # noqa: N802
        self.outcomes[test.id()] = "fail: unexpected success"


def run(mode: str, only: str | None = None) -> dict[str, Any]:
    if mode != "stdlib":
        _install(mode)
    if mode == "canary":
        # Every calling test fails at once; the peers left waiting for it need not wait long.
        from test import support  # noqa: PLC0415

        support.LOOPBACK_TIMEOUT = support.SHORT_TIMEOUT = 0.5
    from test import test_socket  # noqa: PLC0415 - after the wrappers, on purpose

    loader = unittest.TestLoader()
    suite = unittest.TestSuite()
    names = sorted(
        name
        for name, obj in vars(test_socket).items()
        if isinstance(obj, type) and issubclass(obj, unittest.TestCase) and SELECT.search(name)
    )
    if only is not None:
        names = [only]
    for name in names:
        suite.addTests(loader.loadTestsFromTestCase(getattr(test_socket, name)))
    result = _Result()
    test_socket.setUpModule()
    try:
        suite.run(result)
    finally:
        unittest.case.doModuleCleanups()
    return {"mode": mode, "python": sys.version.split()[0], "outcomes": result.outcomes, "calls": _calls}


def _child(mode: str, only: str | None = None, timeout: float | None = None) -> dict[str, Any] | None:
    """Run one mode (one class: only) in a child process; None when it hung past timeout."""
    with tempfile.TemporaryDirectory() as tmp:  # away from the checkout: the installed portmsg runs
        out = Path(tmp) / "result.json"
        env = dict(os.environ, PORTMSG_STDLIB_OUT=str(out))
        command = [sys.executable, str(Path(__file__).resolve()), "run", mode, *([only] if only else [])]
        try:
            subprocess.run(command, cwd=tmp, env=env, check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if not out.exists():
            sys.exit(f"stdlib_socket: the {mode} run died before reporting")
        result: dict[str, Any] = json.loads(out.read_text())
        return result


def _canary(calling: set[str]) -> dict[str, str]:
    """Canary outcomes, one child per test class.

    A class whose failing tests leave the harness deadlocked (3.10's ThreadSafeCleanupTestCase,
    when the server fails before its client thread is done) hangs: that counts as failing for
    every test in it, since with the real methods the same class passes.
    """
    outcomes: dict[str, str] = {}
    for name in sorted({test.rsplit(".", 2)[-2] for test in calling}):
        result = _child("canary", name, timeout=CLASS_TIMEOUT)
        if result is None:
            outcomes.update({t: f"fail: hung past {CLASS_TIMEOUT} s" for t in calling if t.rsplit(".", 2)[-2] == name})
        else:
            outcomes.update(result["outcomes"])
    return outcomes


def check(*, baseline: bool) -> int:
    ours = _child("portmsg")
    assert ours is not None
    problems = []
    outcomes, calls = ours["outcomes"], ours["calls"]
    passed = {t for t, o in outcomes.items() if o == "pass"}
    if baseline:
        stdlib_run = _child("stdlib")
        assert stdlib_run is not None
        stdlib = stdlib_run["outcomes"]
        theirs = {t for t, o in stdlib.items() if o == "pass"}
        problems += [
            f"passes with the stdlib, not with portmsg: {t}: {outcomes.get(t)}" for t in sorted(theirs - passed)
        ]
        problems += [f"passes with portmsg, not with the stdlib: {t}: {stdlib.get(t)}" for t in sorted(passed - theirs)]
    else:
        gaps = {t for t in WINE_GAPS if t in outcomes} if "wine" in _platform() else set()
        failed = {t for t, o in outcomes.items() if o.startswith(("fail", "error"))}
        problems += [f"fails: {t}: {outcomes[t]}" for t in sorted(failed - gaps)]
        problems += [f"listed as a Wine gap but passes now: {t}" for t in sorted(gaps - failed)]
    calling = {t for t, n in calls.items() if n and t in outcomes}
    canary = _canary(calling)
    proof = {t for t in calling if canary.get(t, "").startswith(("fail", "error"))}
    problems += [f"called a wrapper but did not fail in canary mode: {t}" for t in sorted(calling - proof)]
    if len(calling) < MIN_CALLING[baseline]:
        problems.append(f"only {len(calling)} tests called the wrappers (at least {MIN_CALLING[baseline]} expected)")
    skipped = {t: o for t, o in outcomes.items() if o.startswith("skip")}
    print(
        f"test_socket {ours['python']} with portmsg ({_platform()}): {len(outcomes)} tests, {len(passed)} passed, "
        f"{len(skipped)} skipped, {len(calling)} called portmsg; canary failed all {len(proof)} of those"
    )
    for reason, n in sorted(_count(skipped.values()).items(), key=lambda kv: -kv[1])[:12]:
        print(f"  skipped x{n}: {reason[6:]}")
    for problem in problems:
        print(f"stdlib_socket: {problem}", file=sys.stderr)
    return 1 if problems else 0


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def _platform() -> str:
    import portmsg  # noqa: PLC0415

    return portmsg.PLATFORM


def main(argv: list[str]) -> int:
    if len(argv) in (2, 3) and argv[0] == "run":
        result = run(argv[1], argv[2] if len(argv) == 3 else None)
        Path(os.environ["PORTMSG_STDLIB_OUT"]).write_text(json.dumps(result))
        return 0
    if argv and argv[0] == "check":
        return check(baseline="--no-baseline" not in argv and hasattr(socket.socket, "recvmsg"))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
