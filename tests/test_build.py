"""The build scripts, as setup.py and the Wine leg use them (no compiler needed)."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

pytest.importorskip("cffi", reason="the build scripts need cffi")

SOURCE = Path(__file__).resolve().parent.parent / "portmsg"


@pytest.fixture(params=["_build_posix", "_build_win"])
def builder(request: pytest.FixtureRequest):
    return runpy.run_path(str(SOURCE / f"{request.param}.py"))["ffibuilder"]


def test_builder_emits_c_with_walker_and_guarded_constants(builder, tmp_path: Path) -> None:
    target = tmp_path / "module.c"
    builder.emit_c_code(str(target))
    code = target.read_text()
    assert "int pm_walk(" in code
    # every shared declaration is bound, plus this backend's own entry point
    for name in (
        "pm_walk",
        "pm_encode",
        "pm_cmsg_len",
        "pm_cmsg_space",
        "pm_constants",
        "pm_recv",
        "pm_recv_batch",
        "pm_send",
    ):
        assert f"_cffi_f_{name}" in code
    # Windows adds only its provider and error helpers.
    assert ("_cffi_f_pm_extension" in code) == ("WSAIoctl" in code)
    assert '#ifdef IP_PKTINFO\n    {"IP_PKTINFO", (long long)(IP_PKTINFO)},\n#endif' in code


def test_constants_table_guards_every_name() -> None:
    assembler = runpy.run_path(str(SOURCE / "_csrc" / "ffi_assemble.py"))
    table = assembler["constants_table"]()
    names = [
        line.strip()
        for line in (SOURCE / "_csrc" / "constants.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for name in names:
        assert f"#ifdef {name}\n" in table
    assert table.count("#ifdef") == len(names)


def test_windows_prelude_supplies_names_mingw_lacks() -> None:
    prelude = runpy.run_path(str(SOURCE / "_build_win.py"))["PRELUDE"]
    for name, value in [
        ("IP_RECVECN", "50"),
        ("UDP_SEND_MSG_SIZE", "2"),
        ("UDP_RECV_MAX_COALESCED_SIZE", "3"),
        ("UDP_COALESCED_INFO", "3"),
        ("SIO_UDP_NETRESET", "_WSAIOW(IOC_VENDOR, 15)"),
    ]:
        assert f"#ifndef {name}\n#define {name} {value}\n#endif" in prelude
