"""Legs in Debian roots of the project's own: a bare Debian 13 (trixie, python3.13, Wine 10) and 32-bit x86.

    python tools/rootleg.py debian13 [ENVS]   tools/test.sh -e ENVS inside a bare Debian 13
                                              (default: every env but the roots; 3.10-3.12 may skip)
    python tools/rootleg.py i386              the behaviour tests and CPython's test_socket on i386 Debian 12

Each root is made once by debootstrap under .cache/roots/ (Debian's own package
mirror, as apt uses), with only python3 and what apt then installs; the checkout's
files (those git tracks, as they are in the working tree) are copied in afresh
every run, so nothing of the host's builds or caches leaks in.  The commands run
under chroot in a mount namespace of their own (proc, sys, dev bound in for the
run, gone after it).  i386 runs natively on an x86_64 kernel: 4-byte cmsg_len
and alignment, 32-bit time_t edges, a real 32-bit CPython.  Needs root.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOTS = ROOT / ".cache" / "roots"
MIRROR = "http://deb.debian.org/debian"
LEGS = {
    # name: (suite, arch, packages debootstrap adds, the command run inside, in /src)
    "debian13": ("trixie", "amd64", "python3,python3-venv,ca-certificates", None),
    "i386": (
        "bookworm",
        "i386",
        "python3,python3-venv,python3-dev,libpython3.11-testsuite,gcc,libc6-dev,make,iproute2,nftables,ca-certificates",
        (
            "python3 -m venv /venv && /venv/bin/pip install -q --disable-pip-version-check {deps} "
            "&& /venv/bin/pip install -q --disable-pip-version-check --force-reinstall --no-deps . "
            "&& cd /tmp && /venv/bin/python -c \"import platform, struct; assert struct.calcsize('P') == 4; "
            "print('i386 leg:', platform.machine(), platform.python_version(), '32-bit')\" "
            "&& /venv/bin/python -m pytest -q -p no:cacheprovider /src/tests "
            "&& /venv/bin/portmsg probe && /venv/bin/python /src/tools/stdlib_socket.py check"
        ),
    ),
}
# Test dependencies the i386 leg cannot install: aioquic needs cryptography>=43, which has no
# i686 wheel and needs a newer Rust than Debian 12's to build (its tests then skip, saying so).
I386_LEFT_OUT = {"aioquic": "cryptography>=43 has no i686 wheel; building it needs a newer Rust than Debian 12's"}


def i386_deps() -> str:
    """The package's dependencies and its tests extra from pyproject.toml, less what cannot be had on i386."""
    try:
        import tomllib  # noqa: PLC0415 - only this leg reads pyproject.toml
    except ImportError:  # Python 3.10: tox.ini gives the env tomli
        import tomli as tomllib  # type: ignore[no-redef]  # noqa: PLC0415

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["tests"]
    kept = [req for req in wanted if not any(req.startswith(name) for name in I386_LEFT_OUT)]
    for name, why in I386_LEFT_OUT.items():
        print(f"rootleg: i386 leaves out {name}: {why}", file=sys.stderr)
    return " ".join(shlex.quote(req) for req in kept)


def fail(message: str) -> None:
    print(f"rootleg: error: {message}", file=sys.stderr)
    sys.exit(2)


def make_root(name: str) -> Path:
    suite, arch, packages, _ = LEGS[name]
    target = ROOTS / name
    stamp = target / "etc" / "rootleg-packages"  # what the root was made with: a change makes it anew
    if stamp.exists() and stamp.read_text() == packages:
        return target
    if not shutil.which("debootstrap"):
        fail("debootstrap is missing (apt-get install debootstrap)")
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    print(f"rootleg: making a {suite} {arch} root in {target}", file=sys.stderr, flush=True)
    command = ["debootstrap", "--variant=minbase", f"--arch={arch}", f"--include={packages}", suite, str(target)]
    done = subprocess.run([*command, MIRROR], capture_output=True, text=True, check=False)
    if done.returncode:
        print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
        fail(f"debootstrap {suite} {arch} failed")
    stamp.write_text(packages)
    return target


def copy_checkout(target: Path) -> None:
    """The files git tracks (and the untracked ones it does not ignore), as they are, into /src."""
    src = target / "src"
    shutil.rmtree(src, ignore_errors=True)
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        path = ROOT / os.fsdecode(name)
        if path.is_file():
            dest = src / os.fsdecode(name)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, dest)


# The host's network setup, as a newcomer's machine on this network would have it: its CA
# certificates (a site proxy may sign TLS), where pip and Python find them, proxies, CI.
PASSED_ENV = (
    "CI",
    "PIP_CERT",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_INDEX_URL",
    "REQUESTS_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)
LOCAL_CAS = Path("/usr/local/share/ca-certificates")


def run_inside(target: Path, command: str) -> int:
    shutil.copy2("/etc/resolv.conf", target / "etc" / "resolv.conf")
    # debootstrap writes no /etc/hosts: without "localhost" CPython's test_socket (whose HOST it is) cannot bind.
    (target / "etc" / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    if LOCAL_CAS.is_dir():
        shutil.copytree(LOCAL_CAS, target / LOCAL_CAS.relative_to("/"), dirs_exist_ok=True)
        command = f"update-ca-certificates >/dev/null 2>&1; {command}"
    mounts = (
        f"mount -t proc proc {target}/proc && mount --rbind /sys {target}/sys && "
        f"mount --rbind /dev {target}/dev && mount -t tmpfs tmpfs {target}/tmp"  # noqa: S108 - the root's own /tmp
    )
    passed = " ".join(shlex.quote(f"{k}={os.environ[k]}") for k in PASSED_ENV if k in os.environ)
    env = f"env -i HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 {passed}"
    inner = f"cd /src && {command}"
    script = f"{mounts} && exec chroot {target} {env} sh -c {shlex.quote(inner)}"
    # A 32-bit root runs with a 32-bit personality (uname says i686), as Debian's schroot sets it: else
    # a 32-bit Python on this kernel calls itself linux-x86_64 and tags its wheels so.
    personality = ["setarch", "i686"] if LEGS[target.name][1] == "i386" else []
    namespace = ["unshare", "-m", "--propagation", "private"]
    return subprocess.run([*namespace, *personality, "sh", "-c", script], check=False).returncode


def debian13_command(envs: str | None) -> str:
    """The README's test command as a newcomer runs it on Debian 13.

    Not under CI=true: what cannot run there (CPython 3.10-3.12; Debian 13 has only 3.13) is
    listed, not failed; every env Debian 13 can offer must run (MATRIX_MUST_RUN).
    """
    if envs is None:
        sys.path.insert(0, str(ROOT / "tools"))
        import matrix  # noqa: PLC0415 - tools/matrix.py reads tox.ini's env_list

        envs = ",".join(env for env in matrix.env_list() if env not in LEGS)
    must = [env for env in envs.split(",") if not any(f"3.{minor}" in env for minor in (10, 11, 12))]
    return f"env -u CI MATRIX_MUST_RUN={','.join(must)} bash tools/test.sh -e {envs}"


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in LEGS:
        print(__doc__)
        return 2
    if os.geteuid() != 0:
        fail("the root legs need root (debootstrap, chroot, mounts)")
    name = argv[0]
    target = make_root(name)
    copy_checkout(target)
    template = LEGS[name][3]
    if template is None:  # debian13: the project's own test command, as a newcomer runs it there
        command = debian13_command(argv[1] if len(argv) > 1 else None)
    else:
        command = template.format(deps=i386_deps())
    code = run_inside(target, command)
    print(f"rootleg: {name} finished with {code}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
