"""Winsock-only behaviour: WSARecvMsg's input flags, provider pointers, error codes, UDP resets.

Backend-specific because these are Windows mechanisms with no POSIX
counterpart; they run on the Windows leg (under Wine here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

import portmsg
from portmsg import native

if TYPE_CHECKING:
    from helpers import Pair

if portmsg.BACKEND != "winsock":
    pytest.skip("Winsock-only mechanisms: this is the POSIX backend", allow_module_level=True)


def test_only_msg_peek_is_accepted_as_input(pair: Pair) -> None:
    pair.send(b"x")
    with pytest.raises(ValueError, match=r"flags: .*MSG_PEEK"):
        portmsg.recvmsg(pair.receiver, 10, 0, native.MSG_PEEK | native.MSG_WAITALL)
    assert portmsg.recvmsg(pair.receiver, 10, 0, native.MSG_PEEK)[0] == b"x"
    assert portmsg.recvmsg(pair.receiver, 10)[0] == b"x"


def test_wsaemsgsize_becomes_native_msg_trunc(pair: Pair) -> None:
    pair.send(b"t" * 64)
    data, _, flags, _ = portmsg.recvmsg(pair.receiver, 8)
    assert data == b"t" * 8
    assert flags == native.MSG_TRUNC


def test_extension_pointers_are_cached_per_provider(pair: Pair) -> None:
    from portmsg._winsock import PROVIDERS

    first = PROVIDERS(pair.receiver, pair.receiver.fileno())
    second = PROVIDERS(pair.sender, pair.sender.fileno())
    assert first == second  # both sockets belong to the same UDP provider
    assert first in PROVIDERS.by_provider.values()


def test_errors_carry_the_stdlib_winerror(pair: Pair) -> None:
    pair.receiver.setblocking(False)
    with pytest.raises(BlockingIOError) as ours:
        portmsg.recvmsg(pair.receiver, 10)
    with pytest.raises(BlockingIOError) as stdlib:
        pair.receiver.recvfrom(10)
    assert (ours.value.errno, ours.value.winerror) == (stdlib.value.errno, stdlib.value.winerror)  # type: ignore[attr-defined]
    pair.receiver.close()
    with pytest.raises(OSError) as closed:
        portmsg.recv(pair.receiver)
    assert closed.value.winerror == native.WSAENOTSOCK  # type: ignore[attr-defined]


def test_disable_udp_resets_reports_what_the_provider_accepted(pair: Pair) -> None:
    done = portmsg.disable_udp_resets(pair.receiver)
    assert done <= {"SIO_UDP_CONNRESET", "SIO_UDP_NETRESET"}
    assert "SIO_UDP_CONNRESET" in done
    if portmsg.PLATFORM.startswith("wine"):
        assert "SIO_UDP_NETRESET" not in done  # Wine 8 refuses it (WSAEOPNOTSUPP)
