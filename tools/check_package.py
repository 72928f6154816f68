"""Build the sdist and the wheel the way a user or PyPI would, look inside them, and run the sdist's own tests.

    python tools/check_package.py [--keep DIR]

1. `python -m build` makes the sdist, then the wheel *from that sdist*: a file the
   sdist lacks breaks the wheel build here, not on a user's machine.
2. The wheel: the compiled module, py.typed, LICENSE in its .dist-info, MIT in its
   metadata, the abi3 tag (cp310) unless this interpreter is free-threaded, no
   build-time inputs (`_build_*.py`, `_csrc/`, generated C); on Linux, auditwheel
   finds a manylinux tag and no library beyond libc.
3. The sdist: everything its own tests and tox need (tests/conftest.py,
   tests/helpers.py, docs/, tox.ini, the C sources), and no caches, build output or
   `.coverage`.
4. The wheel goes into a fresh venv; the unpacked sdist's tests run against it there.

Exits non-zero naming every problem found.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SDIST_NEEDS = (
    "LICENSE",
    "README.md",
    "pyproject.toml",
    "setup.py",
    "tox.ini",
    "MANIFEST.in",
    "portmsg/py.typed",
    "portmsg/_build_posix.py",
    "portmsg/_build_win.py",
    "portmsg/_csrc/portmsg.h",
    "portmsg/_csrc/ffi_assemble.py",
    "portmsg/_csrc/constants.txt",
    "tests/conftest.py",
    "tests/helpers.py",
    "docs/platforms.md",
    "tools/test.sh",
    "tools/setup.sh",
)
SDIST_FORBIDS = (".coverage", "__pycache__", ".so", ".pyd", ".o", ".pyc", "_cffi.c", ".tox/", ".cache/", ".venv/")


def run(*cmd: str, cwd: Path | None = None) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def check_wheel(wheel: Path, problems: list[str]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next((archive.read(n).decode() for n in names if n.endswith(".dist-info/METADATA")), "")
    extension = [n for n in names if n.startswith("portmsg/_") and n.endswith((".so", ".pyd"))]
    if not extension:
        problems.append(f"{wheel.name}: no compiled module in portmsg/")
    if "portmsg/py.typed" not in names:
        problems.append(f"{wheel.name}: portmsg/py.typed is missing (types would not be seen)")
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        problems.append(f"{wheel.name}: LICENSE is not in .dist-info/licenses/")
    if "License-Expression: MIT" not in metadata:
        problems.append(f"{wheel.name}: METADATA has no 'License-Expression: MIT'")
    shipped_inputs = [n for n in names if "/_build_" in n or "/_csrc/" in n or n.endswith("_cffi.c")]
    if shipped_inputs:
        problems.append(f"{wheel.name}: build-time inputs shipped: {shipped_inputs}")
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    if not free_threaded and "-cp310-abi3-" not in wheel.name:
        problems.append(f"{wheel.name}: not tagged cp310-abi3 (one wheel per platform for CPython 3.10+)")
    print(f"wheel {wheel.name}: {len(names)} files, extension {extension}")


def check_auditwheel(wheel: Path, problems: list[str]) -> None:
    """Linux: auditwheel must find a manylinux tag and no library beyond the C library."""
    if not sys.platform.startswith("linux"):
        return
    shown = subprocess.run(["auditwheel", "show", str(wheel)], capture_output=True, text=True, check=False)
    report = " ".join(shown.stdout.split())
    print(f"auditwheel: {report}")
    tag = re.search(r'consistent with the following platform tag: "(manylinux_[^"]+)"', report)
    libraries = set(re.findall(r"(\S+\.so[.\d]*) with versions", report))
    if shown.returncode or tag is None:
        problems.append(f"{wheel.name}: auditwheel finds no manylinux tag: {report or shown.stderr.strip()}")
    if "external shared libraries are required" in report or not libraries <= {"libc.so.6"}:
        problems.append(f"{wheel.name}: links more than the C library: {sorted(libraries)}")


def check_sdist(sdist: Path, problems: list[str]) -> None:
    with tarfile.open(sdist) as archive:
        names = [m.name.split("/", 1)[1] for m in archive.getmembers() if "/" in m.name]
    missing = [n for n in SDIST_NEEDS if n not in names]
    if missing:
        problems.append(f"{sdist.name}: missing {missing}")
    extra = sorted({n for n in names for bad in SDIST_FORBIDS if bad in n or n.endswith(bad)})
    if extra:
        problems.append(f"{sdist.name}: should not ship {extra}")
    print(f"sdist {sdist.name}: {len(names)} files")


def run_sdist_tests(sdist: Path, wheel: Path, work: Path) -> None:
    with tarfile.open(sdist) as archive:
        if hasattr(tarfile, "data_filter"):
            archive.extractall(work / "unpacked", filter="data")
        else:  # Debian 12's 3.11.2 predates the filter (3.11.4); the sdist is our own, just built
            archive.extractall(work / "unpacked")
    tree = next((work / "unpacked").iterdir())
    env = work / "venv"
    venv.create(env, with_pip=True)
    scripts = env / ("Scripts" if sys.platform == "win32" else "bin")
    run(str(scripts / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{wheel}[tests]")
    # The unpacked tree's portmsg/ has no compiled module, so the tests must import the installed
    # one: the pytest script (not `python -m pytest`) keeps the tree's root off sys.path.
    run(str(scripts / "pytest"), "-q", "-p", "no:cacheprovider", "tests", cwd=tree)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", type=Path, help="build into this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="portmsg-package-") as temp:
        work = args.keep or Path(temp)
        dist = work / "dist"
        run(sys.executable, "-m", "build", "--outdir", str(dist), str(ROOT))
        (sdist,) = dist.glob("portmsg-*.tar.gz")
        (wheel,) = dist.glob("portmsg-*.whl")
        problems: list[str] = []
        check_wheel(wheel, problems)
        check_auditwheel(wheel, problems)
        check_sdist(sdist, problems)
        if problems:
            for problem in problems:
                print(f"check_package: {problem}", file=sys.stderr)
            return 1
        run_sdist_tests(sdist, wheel, work)
    print("check_package: the sdist, the wheel and the sdist's own tests are right")
    return 0


if __name__ == "__main__":
    sys.exit(main())
