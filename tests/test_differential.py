"""portmsg's Level 1 against the stdlib's socket methods, where the stdlib has them.

Each case sends the same datagram twice, receives one copy with the stdlib
and one with portmsg, and requires identical results: data, ancillary items
(level, type and bytes), flags and address.  Only timestamp payloads differ.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable

import pytest
from helpers import Pair, send_option, udp_pair

import portmsg
from portmsg import native

if not hasattr(socket.socket, "recvmsg"):
    pytest.skip(
        "the stdlib has no socket.recvmsg on this platform (Windows): nothing to compare against",
        allow_module_level=True,
    )

TIMESTAMP_TYPES = {getattr(native, n) for n in ("SCM_TIMESTAMP", "SCM_TIMESTAMPNS") if hasattr(native, n)}


def _same_error(ours: Callable[[], object], theirs: Callable[[], object], *, same_text: bool) -> None:
    """Both calls raise: the same class (and, where asked, the same message)."""
    with pytest.raises(Exception) as mine:
        ours()
    with pytest.raises(Exception) as stdlib:
        theirs()
    assert type(mine.value) is type(stdlib.value)
    if same_text:
        assert str(mine.value) == str(stdlib.value)


def _without_time(result: tuple) -> tuple:
    data, ancdata, flags, address = result
    items = [
        (lvl, typ, b"<time>" if lvl == native.SOL_SOCKET and typ in TIMESTAMP_TYPES else bytes(d))
        for lvl, typ, d in ancdata
    ]
    return data, items, flags, address


def _both(pair: Pair, payload: bytes, bufsize: int, ancbufsize: int, flags: int) -> tuple[tuple, tuple]:
    pair.send(payload)
    pair.send(payload)
    ours = portmsg.recvmsg(pair.receiver, bufsize, ancbufsize, flags)
    if flags & native.MSG_PEEK:
        portmsg.recvmsg(pair.receiver, 65535)
    theirs = pair.receiver.recvmsg(bufsize, ancbufsize, flags)
    if flags & native.MSG_PEEK:
        pair.receiver.recvmsg(65535)
    return _without_time(ours), _without_time(theirs)


@pytest.mark.parametrize("features", ["none", "all"])
@pytest.mark.parametrize("bufsize", [0, 5, 100])
@pytest.mark.parametrize("ancbufsize", [0, 1, 24, 40, 1024])
@pytest.mark.parametrize("flags", ["0", "MSG_PEEK", "MSG_TRUNC"])
def test_recvmsg_matches_stdlib(family: int, features: str, bufsize: int, ancbufsize: int, flags: str) -> None:
    native_flags = 0 if flags == "0" else getattr(native, flags)
    with udp_pair(family) as pair:
        if features == "all":
            pair.enable()
        pair.sender.setsockopt(*send_option(family, "tclass"), 0xB9)
        ours, theirs = _both(pair, b"differential!", bufsize, ancbufsize, native_flags)
        assert ours == theirs


def test_recvmsg_into_matches_stdlib(family: int) -> None:
    with udp_pair(family) as pair:
        pair.enable()
        pair.send(b"0123456789abcdef")
        pair.send(b"0123456789abcdef")
        a1, a2 = bytearray(3), bytearray(20)
        b1, b2 = bytearray(3), bytearray(20)
        ours = portmsg.recvmsg_into(pair.receiver, [a1, memoryview(a2)[:5]], 256)
        theirs = pair.receiver.recvmsg_into([b1, memoryview(b2)[:5]], 256)
        assert _without_time(ours) == _without_time(theirs)
        assert (a1, a2) == (b1, b2)


def test_dual_stack_matches_stdlib() -> None:
    from helpers import dual_stack_socket

    receiver = dual_stack_socket()
    with receiver, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        portmsg.enable(receiver)
        for _ in range(2):
            sender.sendto(b"mapped", ("127.0.0.1", receiver.getsockname()[1]))
        assert _without_time(portmsg.recvmsg(receiver, 100, 512)) == _without_time(receiver.recvmsg(100, 512))


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX on this platform")
def test_unix_credentials_and_rights_match_stdlib() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with a, b:
        portmsg.enable(b)
        fd = os.open(os.devnull, os.O_RDONLY)
        try:
            rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fd.to_bytes(4, "little", signed=True) * 2)]
            a.sendmsg([b"fds"], rights)
            a.sendmsg([b"fds"], rights)
        finally:
            os.close(fd)
        ours = portmsg.recvmsg(b, 10, 256)
        theirs = b.recvmsg(10, 256)
        received = []
        for result in (ours, theirs):
            for level, kind, data in result[1]:
                if (level, kind) == (socket.SOL_SOCKET, socket.SCM_RIGHTS):
                    received.extend(int.from_bytes(data[i : i + 4], "little") for i in range(0, len(data), 4))
        for fd in received:
            os.close(fd)
        assert len(received) == 4
        shape = lambda r: (r[0], [(lv, ty, len(d)) for lv, ty, d in r[1]], r[2], r[3])  # noqa: E731
        assert shape(ours) == shape(theirs)
        creds = [d for lv, ty, d in ours[1] if ty == native.SCM_CREDENTIALS]
        assert creds == [d for lv, ty, d in theirs[1] if ty == native.SCM_CREDENTIALS]


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no AF_UNIX on this platform")
def test_unix_addresses_match_stdlib(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "recv.sock")  # noqa: PTH118
    with (
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as named,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as unnamed,
        socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as abstract,
    ):
        receiver.bind(path)
        named.bind(os.path.join(tmp_path, "send.sock"))  # noqa: PTH118
        senders = [named, unnamed]
        if sys.platform.startswith("linux"):
            abstract.bind(b"\0portmsg-test-%d" % os.getpid())
            senders.append(abstract)
        for sender in senders:
            sender.sendto(b"u", path)
            sender.sendto(b"u", path)
            ours, theirs = portmsg.recvmsg(receiver, 10)[3], receiver.recvmsg(10)[3]
            assert ours == theirs
            assert type(ours) is type(theirs)


@pytest.mark.parametrize(
    "args",
    [(-1,), (10, -1), ("a",), (10, 0, "x"), (2**63,), (1.5,)],
    ids=["negative", "negative-anc", "str", "str-flags", "huge", "float"],
)
def test_recvmsg_argument_errors_match_stdlib(family: int, args: tuple) -> None:
    with udp_pair(family) as pair:
        _same_error(
            lambda: portmsg.recvmsg(pair.receiver, *args), lambda: pair.receiver.recvmsg(*args), same_text=False
        )


@pytest.mark.parametrize(
    "args",
    [(1,), ([b"x"],), ([bytearray(1)], -1), ([bytearray(1)], 0, "x")],
    ids=["not-iterable", "read-only", "negative-anc", "str-flags"],
)
def test_recvmsg_into_argument_errors_match_stdlib(args: tuple) -> None:
    with udp_pair(socket.AF_INET) as pair:
        _same_error(
            lambda: portmsg.recvmsg_into(pair.receiver, *args),
            lambda: pair.receiver.recvmsg_into(*args),
            same_text=True,
        )


@pytest.mark.parametrize(
    "args",
    [
        (1,),
        ([1],),
        ([b"x"], [(1,)]),
        ([b"x"], [(1, 2, 3)]),
        ([b"x"], (), "x"),
        ([b"x"], (), 0, ("127.0.0.1", 70000)),
        ([b"x"], (), 0, 1),
    ],
    ids=["not-iterable", "not-bytes", "short-item", "int-data", "str-flags", "bad-port", "int-address"],
)
def test_sendmsg_argument_errors_match_stdlib(args: tuple) -> None:
    with udp_pair(socket.AF_INET) as pair:
        _same_error(lambda: portmsg.sendmsg(pair.sender, *args), lambda: pair.sender.sendmsg(*args), same_text=True)


def test_sendmsg_puts_the_same_datagram_and_controls_on_the_wire(family: int) -> None:
    with udp_pair(family) as pair:
        pair.enable()
        if family == socket.AF_INET:
            ancdata = [
                (socket.IPPROTO_IP, native.IP_TOS, (0xB9).to_bytes(4, "little")),
                (socket.IPPROTO_IP, native.IP_TTL, (9).to_bytes(4, "little")),
            ]
        else:
            ancdata = [
                (native.IPPROTO_IPV6, native.IPV6_TCLASS, (0xB9).to_bytes(4, "little")),
                (native.IPPROTO_IPV6, native.IPV6_HOPLIMIT, (9).to_bytes(4, "little")),
            ]
        assert portmsg.sendmsg(pair.sender, [b"ab", b"cd"], ancdata, 0, pair.address) == 4
        assert pair.sender.sendmsg([b"ab", b"cd"], ancdata, 0, pair.address) == 4
        first = _without_time(pair.receiver.recvmsg(100, 512))
        second = _without_time(pair.receiver.recvmsg(100, 512))
        assert first == second
        assert first[0] == b"abcd"


@pytest.mark.parametrize("n", [0, 1, 4, 12, 20, 1000])
def test_cmsg_macros_match_stdlib(n: int) -> None:
    assert portmsg.CMSG_LEN(n) == socket.CMSG_LEN(n)
    assert portmsg.CMSG_SPACE(n) == socket.CMSG_SPACE(n)


def test_cmsg_macros_reject_what_stdlib_rejects() -> None:
    for func, ours in ((socket.CMSG_LEN, portmsg.CMSG_LEN), (socket.CMSG_SPACE, portmsg.CMSG_SPACE)):
        for bad in (-1, 2**40):
            with pytest.raises(OverflowError):
                func(bad)
            with pytest.raises(OverflowError):
                ours(bad)


def test_native_constants_match_stdlib() -> None:
    shared = [name for name in native.CONSTANTS if hasattr(socket, name)]
    assert len(shared) > 20
    assert {n: getattr(socket, n) for n in shared} == {n: native.CONSTANTS[n] for n in shared}
