"""The compiled module loads and its constants have their header values."""

from __future__ import annotations

import socket

import portmsg
from portmsg import native


def test_backend_matches_platform() -> None:
    assert ("winsock" if hasattr(socket, "WSAGetLastError") or socket.AF_INET6 == 23 else "posix") == portmsg.BACKEND
    assert portmsg.PLATFORM


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
        assert not hasattr(native, "SCM_RIGHTS")
        assert portmsg.CMSG_SPACE(8) == 24
    else:
        assert native.MSG_PEEK == socket.MSG_PEEK
        assert native.MSG_TRUNC == socket.MSG_TRUNC


def test_layout_constants_stay_private() -> None:
    assert not [name for name in native.CONSTANTS if name.startswith("PM_")]


def test_missing_constant_is_absent_not_guessed() -> None:
    assert not hasattr(native, "NO_SUCH_CONSTANT")
    assert all(isinstance(value, int) for value in native.CONSTANTS.values())


def test_public_names() -> None:
    for name in portmsg.__all__:
        assert hasattr(portmsg, name), name
