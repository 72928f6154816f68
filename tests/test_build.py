"""The build helper and scripts, as setup.py and the Wine leg use them."""

from __future__ import annotations

import importlib.util
import runpy
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("cffi", reason="the build scripts need cffi")

SOURCE = Path(__file__).resolve().parent.parent / "portmsg"
if not (SOURCE / "_csrc" / "ffi_assemble.py").exists():
    pytest.skip("the build inputs are not shipped with the installed package", allow_module_level=True)
ASSEMBLER = runpy.run_path(str(SOURCE / "_csrc" / "ffi_assemble.py"))


@pytest.mark.parametrize("script", ["_build_posix", "_build_win"])
def test_builder_binds_every_shared_entry_point(script: str, tmp_path: Path) -> None:
    builder = runpy.run_path(str(SOURCE / f"{script}.py"))["ffibuilder"]
    target = tmp_path / "module.c"
    builder.emit_c_code(str(target))
    code = target.read_text()
    for name in ("pm_walk", "pm_encode", "pm_cmsg_len", "pm_cmsg_space", "pm_constants", "pm_recv", "pm_recv_batch"):
        assert f"_cffi_f_{name}(" in code, name
    assert "_cffi_f_pm_send(" in code
    # Only the Windows build binds the provider lookup, and only it calls WSAIoctl.
    assert ("_cffi_f_pm_extension(" in code) is ("WSAIoctl(" in code) is (script == "_build_win")


def test_constant_names_skip_comments_and_blank_lines() -> None:
    text = "# heading\nIP_TOS\n\n   # indented comment\n  IP_TTL  \nSOL_SOCKET\n"
    assert ASSEMBLER["constant_names"](text) == ["IP_TOS", "IP_TTL", "SOL_SOCKET"]


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler on this machine to compile the table")
def test_constants_table_leaves_out_names_the_headers_lack(tmp_path: Path) -> None:
    """Compiled for real: a name the headers define is in the table with its value; a missing one is absent."""
    table = ASSEMBLER["constants_table"](["PM_DEFINED", "PM_NOT_DEFINED", "PM_EXPRESSION"])
    program = tmp_path / "table.c"
    program.write_text(
        "#include <stdio.h>\n"
        "typedef struct { const char *name; long long value; } pm_constant;\n"
        "#define PM_DEFINED 42\n#define PM_EXPRESSION (1LL << 40)\n"
        f"{table}\n"
        "int main(void)\n{\n    int n;\n    const pm_constant *t = pm_constants(&n);\n"
        '    for (int i = 0; i < n; i++)\n        printf("%s=%lld\\n", t[i].name, t[i].value);\n    return 0;\n}\n'
    )
    exe = tmp_path / "table"
    subprocess.run(["cc", "-Wall", "-Werror", str(program), "-o", str(exe)], check=True)
    output = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    assert output.splitlines() == ["PM_DEFINED=42", f"PM_EXPRESSION={1 << 40}"]


def test_every_listed_constant_is_guarded() -> None:
    names = ASSEMBLER["constant_names"]()
    table = ASSEMBLER["constants_table"]()
    assert len(names) == len(set(names)) > 100
    for name in names:
        assert f'#ifdef {name}\n    {{"{name}", (long long)({name})}},\n#endif\n' in table


def test_windows_prelude_supplies_names_mingw_lacks() -> None:
    prelude = (SOURCE / "_csrc" / "winsock.h").read_text()
    for name, value in [
        ("IP_RECVECN", "50"),
        ("UDP_SEND_MSG_SIZE", "2"),
        ("UDP_RECV_MAX_COALESCED_SIZE", "3"),
        ("UDP_COALESCED_INFO", "3"),
        ("SIO_UDP_NETRESET", "_WSAIOW(IOC_VENDOR, 15)"),
    ]:
        assert f"#ifndef {name}\n#define {name} {value}\n#endif" in prelude


def test_a_stable_abi_module_is_refused_on_a_free_threaded_cpython(monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard itself, on this interpreter's real compiled module, as a free-threaded CPython would see it."""
    import sysconfig

    from portmsg import _backend

    _backend._refuse_stable_abi_on_free_threading()  # this interpreter loaded it: nothing to refuse
    module = importlib.util.find_spec(_backend._MODULE)
    assert module is not None
    assert module.origin is not None
    if ".abi3." not in module.origin:
        pytest.skip(f"this build's module is not a stable-ABI one: {module.origin}")
    real = sysconfig.get_config_var
    monkeypatch.setattr(sysconfig, "get_config_var", lambda name: 1 if name == "Py_GIL_DISABLED" else real(name))
    with pytest.raises(ImportError, match=r"abi3.*free-threaded.*--no-binary portmsg") as refused:
        _backend._refuse_stable_abi_on_free_threading()
    assert refused.value.path == module.origin


def test_only_the_posix_module_keeps_the_gil_in_its_wrappers() -> None:
    """POSIX receives never block (posix.h keeps the GIL); Windows' may wait in C, so its module releases it."""
    import portmsg

    impl = portmsg._api.IMPL
    assert impl.lib.pm_gil_kept() == (1 if impl.name == "posix" else 0)
