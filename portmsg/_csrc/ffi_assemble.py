"""Assemble one cffi builder from the shared build inputs in this folder.

Both build scripts load this file by path (cffi runs them with exec, before
the package can be imported) and name only what is truly per-platform: the
prelude header that includes the system headers and maps the PM_CMSG_*
macros, the entry points' C file, any declarations only that platform
binds, and the libraries to link.  Everything is C in files of its own, so
the sanitizer harness (tools/sanitize_walker.c) compiles the same sources.
"""

from __future__ import annotations

import pathlib

import cffi

HERE = pathlib.Path(__file__).resolve().parent

# cffi's view of the native socket handle: some integer type the compiler
# knows (int on POSIX, SOCKET = UINT_PTR on Windows; the prelude defines it).
SOCKET_CDEF = "typedef int... pm_socket;\n"


def constant_names(text: str | None = None) -> list[str]:
    """The C names listed in constants.txt (or `text`), in order; comments and blank lines skipped."""
    lines = (line.strip() for line in (text if text is not None else (HERE / "constants.txt").read_text()).splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def constants_table(names: list[str] | None = None) -> str:
    """Return C source for pm_constants(): one `#ifdef`-guarded entry per name (constants.txt's by default)."""
    names = constant_names() if names is None else names
    entries = "".join(f'#ifdef {name}\n    {{"{name}", (long long)({name})}},\n#endif\n' for name in names)
    return (
        "static const pm_constant pm_constant_table[] = {\n"
        f"{entries}"
        '    {"", 0}\n'
        "};\n"
        "const pm_constant *pm_constants(int *count)\n"
        "{\n"
        "    *count = (int)(sizeof pm_constant_table / sizeof pm_constant_table[0]) - 1;\n"
        "    return pm_constant_table;\n"
        "}\n"
    )


def source(prelude: str, entry: str) -> str:
    """The whole C source of one backend: prelude, shared header, walker, loops, constants, entry points."""
    parts = [HERE / prelude, HERE / "portmsg.h", HERE / "cmsg_walk.c", HERE / "loops.c"]
    return "\n".join([*(part.read_text() for part in parts), constants_table(), (HERE / entry).read_text()])


def build_ffi(
    module_name: str,
    *,
    prelude: str,
    entry: str,
    extra_cdef: str | None = None,
    libraries: list[str] | None = None,
) -> cffi.FFI:
    """Return an FFI builder whose cdef is portmsg.h (plus `extra_cdef`, a file in this folder)."""
    ffibuilder = cffi.FFI()
    cdef = SOCKET_CDEF + (HERE / "portmsg.h").read_text()
    if extra_cdef:
        cdef += (HERE / extra_cdef).read_text()
    ffibuilder.cdef(cdef)
    ffibuilder.set_source(module_name, source(prelude, entry), libraries=libraries or [])
    return ffibuilder
