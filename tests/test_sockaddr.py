"""Socket-address coding, pure Python: this platform's layout and others' (Windows, BSD), no socket needed."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys

import pytest

from portmsg._api import IMPL
from portmsg._sockaddr import SockaddrCodec

WINDOWS = {"AF_INET": 2, "AF_INET6": 23, "PM_SA_FAMILY_OFFSET": 0, "PM_SA_FAMILY_SIZE": 2}
FREEBSD = {
    "AF_INET": 2,
    "AF_INET6": 28,
    "AF_UNIX": 1,
    "PM_SA_FAMILY_OFFSET": 1,  # sa_len comes first, one byte each
    "PM_SA_FAMILY_SIZE": 1,
    "PM_SUN_PATH_OFFSET": 2,
    "PM_SUN_PATH_SIZE": 104,
}


def test_windows_layout() -> None:
    codec = SockaddrCodec(WINDOWS)
    v4 = codec.encode(2, ("192.0.2.1", 80))
    assert v4 == struct.pack("<H", 2) + struct.pack("!H", 80) + bytes([192, 0, 2, 1]) + bytes(8)
    v6 = codec.encode(23, ("2001:db8::1", 443, 5, 7))
    assert v6[:2] == struct.pack("<H", 23)
    assert v6[2:8] == struct.pack("!HI", 443, 5)
    assert v6[8:24] == socket.inet_pton(socket.AF_INET6, "2001:db8::1")
    assert v6[24:28] == struct.pack("=I", 7)
    assert codec.decode(v4) == ("192.0.2.1", 80)
    assert codec.decode(v6[:24] + struct.pack("=I", 0)) == ("2001:db8::1", 443, 5, 0)


def test_bsd_layout_has_sa_len_first() -> None:
    codec = SockaddrCodec(FREEBSD)
    v4 = codec.encode(2, ("10.0.0.1", 53))
    assert v4[:2] == b"\x00\x02"  # sa_len (the kernel takes namelen instead), sa_family
    assert codec.decode(v4) == ("10.0.0.1", 53)
    unix = codec.encode(1, "/tmp/portmsg.sock")
    assert unix == b"\x00\x01/tmp/portmsg.sock"
    assert codec.decode(unix + b"\x00" * 10) == "/tmp/portmsg.sock"


def test_unknown_family_decodes_as_the_stdlib_does() -> None:
    codec = SockaddrCodec(WINDOWS)
    raw = struct.pack("<H", 99) + b"0123456789abcdef"
    assert codec.decode(raw) == (99, b"0123456789abcd")
    assert codec.decode(b"") is None


@pytest.mark.parametrize(
    ("address", "error", "match"),
    [
        ("127.0.0.1", TypeError, "AF_INET address must be tuple, not str"),
        (("127.0.0.1",), TypeError, r"AF_INET address must be a pair \(host, port\)"),
        (("127.0.0.1", 70000), OverflowError, "port must be 0-65535"),
        (("127.0.0.1", "80"), TypeError, "cannot be interpreted as an integer"),
        ((5, 80), TypeError, "str, bytes or bytearray expected, not int"),
    ],
)
def test_bad_addresses_raise_as_the_stdlib(address: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        SockaddrCodec(WINDOWS).encode(2, address)


def test_this_platform_round_trips_the_stdlib_forms() -> None:
    codec = IMPL.codec
    for family, address in ((socket.AF_INET, ("127.0.0.1", 9)), (socket.AF_INET6, ("::1", 9, 0, 0))):
        assert codec.decode(codec.encode(int(family), address)) == address
    assert codec.encode(socket.AF_INET, ("<broadcast>", 9))[-12:-8] == b"\xff\xff\xff\xff"
    assert codec.encode(socket.AF_INET, ("", 9))[-12:-8] == bytes(4)


@pytest.mark.parametrize(
    "module",
    [
        "portmsg",
        "portmsg.native",
        "portmsg._api",
        "portmsg._args",
        "portmsg._backend",
        "portmsg._glue",
        "portmsg._hooks",
        "portmsg._normalize",
        "portmsg._report",
        "portmsg._scratch",
        "portmsg._send",
        "portmsg._sockaddr",
        "portmsg._types",
        "portmsg._wait",
    ],
)
def test_each_module_imports_alone(module: str, tmp_path) -> None:
    """No import cycle: every module can be the first one imported (run away from the checkout)."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
