"""Assemble one cffi builder from the shared build inputs in this folder.

Both build scripts load this file by path (cffi runs them with exec, before
the package can be imported) and hand it only what is truly per-platform:
the prelude that includes the headers and maps the PM_CMSG_* macros, the
entry point's declarations and source, and the libraries to link.
"""

from __future__ import annotations

import pathlib

import cffi

HERE = pathlib.Path(__file__).resolve().parent


def constants_table() -> str:
    """Return C source for pm_constants(): one `#ifdef`-guarded entry per name."""
    names = [
        line.strip()
        for line in (HERE / "constants.txt").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
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


def build_ffi(
    module_name: str,
    *,
    prelude: str,
    entry_source: str,
    entry_cdef: str = "",
    libraries: list[str] | None = None,
) -> cffi.FFI:
    """Return an FFI builder whose cdef is portmsg.h (plus any extra declarations)."""
    ffibuilder = cffi.FFI()
    ffibuilder.cdef((HERE / "portmsg.h").read_text() + entry_cdef)
    source = "\n".join(
        [
            prelude,
            (HERE / "portmsg.h").read_text().replace("typedef int... pm_socket;", ""),
            (HERE / "cmsg_walk.c").read_text(),
            (HERE / "loops.c").read_text(),
            constants_table(),
            entry_source,
        ]
    )
    ffibuilder.set_source(module_name, source, libraries=libraries or [])
    return ffibuilder
