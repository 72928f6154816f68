"""The compiled module loads, matches its Python code, and its constants have their header values."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

import portmsg
from portmsg import native
from portmsg._api import IMPL
from portmsg._report import check

CONSTANTS_TXT = Path(__file__).resolve().parent.parent / "portmsg" / "_csrc" / "constants.txt"


def test_backend_matches_platform() -> None:
    assert ("winsock" if sys.platform == "win32" else "posix") == portmsg.BACKEND
    assert portmsg.PLATFORM.startswith(("windows ", "wine ") if sys.platform == "win32" else sys.platform)


def test_levels_have_header_values() -> None:
    assert native.IPPROTO_IP == 0
    assert native.IPPROTO_IPV6 == 41
    assert native.IPPROTO_UDP == 17
    assert native.SOL_SOCKET == socket.SOL_SOCKET
    assert native.AF_INET6 == socket.AF_INET6


def test_platform_constants() -> None:
    if portmsg.BACKEND == "winsock":
        assert (native.IP_PKTINFO, native.IPV6_PKTINFO, native.MSG_TRUNC, native.MSG_CTRUNC) == (19, 19, 0x100, 0x200)
        assert native.UDP_RECV_MAX_COALESCED_SIZE == 3
        assert portmsg.CMSG_SPACE(8) == 24
    else:
        assert native.MSG_PEEK == socket.MSG_PEEK
        assert native.MSG_TRUNC == socket.MSG_TRUNC


def test_layout_constants_stay_private() -> None:
    layout = [name for name in IMPL.constants if name.startswith("PM_")]
    assert "PM_HEADER" in layout
    assert not [name for name in layout if hasattr(native, name) or name in native.CONSTANTS]


@pytest.mark.skipif(not CONSTANTS_TXT.exists(), reason="the build inputs are not shipped with the installed package")
def test_listed_constant_the_platform_lacks_is_absent_not_guessed() -> None:
    lacking = "WSAEWOULDBLOCK" if portmsg.BACKEND == "posix" else "SCM_RIGHTS"
    assert lacking in CONSTANTS_TXT.read_text().split()
    assert not hasattr(native, lacking)
    assert lacking not in native.CONSTANTS
    assert all(isinstance(value, int) for value in native.CONSTANTS.values())


def test_a_compiled_module_from_other_sources_is_refused() -> None:
    check(IMPL.constants)  # the one in use matches
    with pytest.raises(ImportError, match="reinstall portmsg"):
        check(dict(IMPL.constants, PM_ABI_VERSION=IMPL.constants["PM_ABI_VERSION"] - 1))
    with pytest.raises(ImportError, match="built from other sources"):
        check({name: value for name, value in IMPL.constants.items() if name != "PM_RECORD"})


def test_public_names() -> None:
    for name in portmsg.__all__:
        assert hasattr(portmsg, name), name
    # portmsg.aio, portmsg.trio and portmsg.socket are imported by name (trio is optional): attributes once imported.
    public = [name for name in dir(portmsg) if not name.startswith("_") and name not in ("aio", "trio", "socket")]
    assert sorted(public) == sorted(portmsg.__all__), set(public) ^ set(portmsg.__all__)
    assert not [name for name in dir(native) if not name.startswith("_") and name not in native.__all__]
    assert not hasattr(native, "IMPL")


def test_the_async_modules_show_their_public_names_only() -> None:
    from portmsg import aio

    assert dir(aio) == sorted(aio.__all__)
    assert all(hasattr(aio, name) for name in aio.__all__)
    trio_adapter = pytest.importorskip("portmsg.trio", reason="trio is optional")
    assert dir(trio_adapter) == sorted(trio_adapter.__all__)
