"""`from portmsg import socket`: the stdlib's module, with recvmsg and friends on every platform.

A program written for Linux's sock.recvmsg() runs unchanged but for its
import; where the stdlib has recvmsg (Linux) the two give the same results.
"""

from __future__ import annotations

import socket as stdlib

import pytest

import portmsg
from portmsg import socket


def _linux_style_program(module: object) -> tuple[bytes, list[tuple[int, int, bytes]], int, object]:
    """What a program written against Linux's socket module does, using only `module`'s names."""
    s = module  # type: ignore[assignment]
    rx = s.socket(s.AF_INET, s.SOCK_DGRAM)  # type: ignore[attr-defined]
    tx = s.socket(s.AF_INET, s.SOCK_DGRAM)  # type: ignore[attr-defined]
    with rx, tx:
        rx.bind(("127.0.0.1", 0))
        tx.bind(("127.0.0.1", 0))
        rx.settimeout(5)
        # The stdlib's module may lack IP_PKTINFO (CPython 3.11 on Linux does); portmsg's has it everywhere.
        rx.setsockopt(s.IPPROTO_IP, getattr(s, "IP_PKTINFO", portmsg.native.IP_PKTINFO), 1)  # type: ignore[attr-defined]
        tx.sendmsg([b"hello ", b"world"], [], 0, rx.getsockname())
        return rx.recvmsg(100, s.CMSG_SPACE(64))  # type: ignore[attr-defined,no-any-return]


def test_a_linux_program_runs_on_every_platform_by_changing_its_import() -> None:
    data, ancdata, flags, address = _linux_style_program(socket)
    assert data == b"hello world"
    assert [(level, kind) for level, kind, _ in ancdata] == [(socket.IPPROTO_IP, socket.IP_PKTINFO)]
    assert flags == 0
    assert address[0] == "127.0.0.1"
    assert portmsg.normalize(ancdata)[0].address.compressed == "127.0.0.1"  # type: ignore[union-attr]


@pytest.mark.skipif(not hasattr(stdlib.socket, "recvmsg"), reason="the stdlib has recvmsg on POSIX only")
def test_where_the_stdlib_has_recvmsg_both_modules_give_the_same() -> None:
    ours, theirs = _linux_style_program(socket), _linux_style_program(stdlib)
    assert (ours[0], ours[1], ours[2]) == (theirs[0], theirs[1], theirs[2])
    assert type(ours[3]) is type(theirs[3])


def test_the_module_is_the_stdlibs_plus_what_it_lacks() -> None:
    assert all(hasattr(socket, name) for name in stdlib.__all__)
    assert socket.CMSG_LEN(4) == portmsg.CMSG_LEN(4)
    assert socket.IP_PKTINFO == portmsg.native.IP_PKTINFO
    assert issubclass(socket.socket, stdlib.socket)
    assert socket.gaierror is stdlib.gaierror
    for name in ("IP_RECVTTL", "UDP_GRO", "IPV6_RECVPKTINFO"):
        assert hasattr(socket, name) == hasattr(portmsg.native, name)


def test_socketpair_fromfd_and_accept_give_this_modules_socket() -> None:
    a, b = socket.socketpair()
    with a, b:
        assert type(a) is socket.socket
        assert type(b) is socket.socket
        with socket.fromfd(a.fileno(), a.family, a.type) as c:
            assert type(c) is socket.socket
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname()):
            accepted, _ = server.accept()
            with accepted:
                assert type(accepted) is socket.socket
