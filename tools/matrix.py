"""Run the tox matrix on this machine: install what the chosen envs need, run them, say what was skipped.

    python tools/matrix.py [-e ENV[,ENV...]] [-- tox and pytest arguments]

Strict under CI=true (.ci/run sets it): every env chosen must run, and a
missing interpreter or package fails the run.  Elsewhere every env whose
needs can be met runs, and the run ends with a list of what was skipped and
how to get it.  The tooling envs (typing, package, crossbuild, load) run on
the Python that runs tox, whichever CPython 3.10+ that is.  Called by
tools/test.sh, which makes the tox venv first.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOX = ROOT / ".cache" / "tox-venv" / "bin" / "tox"
WINE_PACKAGES = ("wine", "gcc-mingw-w64-x86-64")
BUILD_PACKAGES = ("gcc", "libc6-dev")
# The behaviour tests make network namespaces of their own (path MTU, TPROXY) where they may.
NETNS_PACKAGES = ("iproute2", "nftables")


OPTIONAL_ENVS = ["load"]
"""Envs tox.ini defines outside env_list: run only when named (-e load: the load benchmark, minutes long)."""


@dataclass
class Needs:
    """What one tox env needs from the machine."""

    pythons: tuple[str, ...] = ()
    packages: tuple[str, ...] = ()
    stdlib_tests: bool = False  # the interpreter's own Lib/test (Debian ships it apart)
    commands: dict[str, str] = field(default_factory=dict)  # command -> the package that has it
    root: str = ""  # why the env needs root, if it does


def needs(env: str) -> Needs:  # noqa: PLR0911 - one case per kind of env
    """What env needs (its python comes from a 3.X factor in its name)."""
    version = next((f for f in env.split("-") if f.startswith("3.")), None)
    pythons = (version,) if version else ()
    if env == "lint":
        return Needs()
    if env in ("typing", "package", "crossbuild"):
        return Needs(packages=BUILD_PACKAGES)  # tox's own Python
    if env == "sanitize":
        return Needs(packages=BUILD_PACKAGES, commands={"gcc": "gcc"})
    if env == "windows":
        return Needs(
            packages=WINE_PACKAGES, commands={"wine": "wine", "x86_64-w64-mingw32-gcc": "gcc-mingw-w64-x86-64"}
        )
    if env == "load":
        return Needs(
            packages=(*BUILD_PACKAGES, "dnsperf", "iproute2"),
            commands={"dnsperf": "dnsperf", "ip": "iproute2"},
        )
    if env in ("debian13", "i386"):
        return Needs(
            packages=("debootstrap",),
            commands={"debootstrap": "debootstrap", "unshare": "util-linux", "setarch": "util-linux"},
            root="debootstrap, chroot and mounts in a namespace of its own",
        )
    if env == "windows-stdlib":
        return Needs(pythons=("3.13",), packages=WINE_PACKAGES, stdlib_tests=True)
    if env.startswith("stdlib-"):
        return Needs(pythons=pythons, packages=BUILD_PACKAGES, stdlib_tests=True)
    return Needs(pythons=pythons, packages=BUILD_PACKAGES + NETNS_PACKAGES)


def env_list() -> list[str]:
    """tox.ini's env_list, braces expanded."""
    config = configparser.ConfigParser(interpolation=None)
    config.read(ROOT / "tox.ini")
    envs = []
    for line in config["tox"]["env_list"].split():
        if "{" in line:
            head, rest = line.split("{", 1)
            choices, tail = rest.split("}", 1)
            envs += [f"{head}{choice}{tail}" for choice in choices.split(",")]
        else:
            envs.append(line)
    return envs


def python_for(version: str) -> str | None:
    """python3.X as tox will find it, or None."""
    found = shutil.which(f"python{version}")
    if found and subprocess.run([found, "-c", "pass"], capture_output=True, check=False).returncode == 0:
        return found
    return None


def python_version(python: str) -> str:
    probe = "import sys; print('%d.%d' % sys.version_info[:2])"
    return subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()


def has_stdlib_tests(python: str) -> bool:
    probe = "import test.support, test.test_socket"
    return subprocess.run([python, "-c", probe], capture_output=True, check=False).returncode == 0


def missing_packages(packages: set[str]) -> list[str]:
    if not shutil.which("dpkg-query"):
        return sorted(packages)
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${db:Status-Status}\\n", *sorted(packages)],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {line.split()[0] for line in result.stdout.splitlines() if line.endswith(" installed")}
    return sorted(packages - installed)


def apt_install(packages: list[str]) -> bool:
    if not packages:
        return True
    if not shutil.which("apt-get"):
        return False
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if sudo and not shutil.which("sudo"):
        return False
    print(f"matrix: installing {' '.join(packages)}", file=sys.stderr, flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run([*sudo, "apt-get", "update", "-qq"], check=False, env=env, capture_output=True)
    # dpkg prints a line per unpacked file (about 1,300 for Wine): kept out of the run's output, shown on failure.
    done = subprocess.run(
        [*sudo, "apt-get", "install", "-y", "-qq", *packages], check=False, env=env, capture_output=True, text=True
    )
    if done.returncode:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
    return done.returncode == 0


def debian_stdlib_package(version: str) -> str:
    return f"libpython{version}-testsuite"


def lacks_headers(python: str) -> bool:
    """True for a Debian python3.X without Python.h (python3.X-dev): it cannot build the extension."""
    probe = "import os, sysconfig; raise SystemExit(os.path.exists(sysconfig.get_paths()['include'] + '/Python.h'))"
    return subprocess.run([python, "-c", probe], capture_output=True, check=False).returncode == 0


def builds_with(env: str) -> str | None:
    """The interpreter env compiles portmsg with: its own 3.X, or tox's Python for the tooling envs."""
    need = needs(env)
    if "gcc" not in need.packages or env == "sanitize":
        return None
    if need.pythons:
        return python_for(need.pythons[0])
    return sys.executable  # tox's venv, made from the Python that runs this script


def main(argv: list[str]) -> int:  # noqa: C901, PLR0912 - one decision per kind of need, in order
    strict = os.environ.get("CI", "").lower() == "true"
    chosen, rest = None, []
    args = iter(argv)
    for arg in args:
        if arg == "-e":
            chosen = next(args, "").split(",")
        elif arg.startswith("-e") and len(arg) > 2:
            chosen = arg[2:].split(",")
        else:
            rest.append(arg)
    envs = chosen or env_list()
    known = env_list() + OPTIONAL_ENVS
    unknown = [env for env in envs if env not in known]
    if unknown:
        print(f"matrix: unknown env(s) {', '.join(unknown)}; tox.ini has {', '.join(known)}", file=sys.stderr)
        return 2
    # 1. Debian packages the chosen envs need.
    packages = {p for env in envs for p in needs(env).packages}
    for env in envs:
        if needs(env).stdlib_tests:
            for version in needs(env).pythons:
                python = python_for(version)
                if python and not has_stdlib_tests(python) and python.startswith("/usr/bin/"):
                    packages.add(debian_stdlib_package(version))
    for python in {p for p in map(builds_with, envs) if p}:
        if lacks_headers(python):
            packages.add(f"python{python_version(python)}-dev")
    missing = missing_packages(packages)
    installed = apt_install(missing)
    # 2. Decide which envs can run.
    skipped: dict[str, str] = {}
    for env in envs:
        need = needs(env)
        for version in need.pythons:
            python = python_for(version)
            if python is None:
                skipped[env] = f"no python{version} on PATH (pyenv install {version}, or uv python install {version})"
            elif need.stdlib_tests and not has_stdlib_tests(python):
                skipped[env] = f"{python} has no Lib/test (Debian: apt-get install {debian_stdlib_package(version)})"
        if need.root and os.geteuid() != 0:
            skipped.setdefault(env, f"needs root: {need.root} (sudo bash tools/test.sh -e {env})")
        for command, package in need.commands.items():
            if not shutil.which(command):
                skipped.setdefault(env, f"{command} is missing (apt-get install {package})")
        if not installed and set(need.packages) & set(missing):
            skipped.setdefault(env, f"could not install {' '.join(sorted(set(need.packages) & set(missing)))}")
    # MATRIX_MUST_RUN (rootleg's Debian 13 root sets it): envs that must run even off CI, the rest may skip.
    must = set(filter(None, os.environ.get("MATRIX_MUST_RUN", "").split(",")))
    if must and set(skipped) & must:
        for env in sorted(set(skipped) & must):
            print(
                f"matrix: error: env {env} must run here (MATRIX_MUST_RUN) but cannot: {skipped[env]}", file=sys.stderr
            )
        return 2
    if strict and skipped:
        for env, why in skipped.items():
            print(f"matrix: error: env {env} cannot run here: {why}", file=sys.stderr)
        print("matrix: CI=true runs the whole matrix: a missing piece fails the run", file=sys.stderr)
        return 2
    runnable = [env for env in envs if env not in skipped]
    code = 0
    if runnable:
        code = subprocess.run([str(TOX), "-e", ",".join(runnable), *rest], cwd=ROOT, check=False).returncode
    if skipped:
        print("\nmatrix: these envs did not run on this machine:", file=sys.stderr)
        for env, why in skipped.items():
            print(f"  {env}: {why}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
