"""portmsg.trio: readiness receives and sends with trio's checkpoint and cancellation rules.

Under Wine, trio.run needs a shim (Wine 8 refuses the SIO_BSP_HANDLE_SELECT
query trio makes at start-up only to detect LSPs): applied here, in the tests,
and only when portmsg.PLATFORM says Wine.  A real Windows host runs trio as is.
"""

from __future__ import annotations

import socket
import time

import pytest
from helpers import LOOPBACK

import portmsg
from portmsg import Feature

trio = pytest.importorskip("trio", reason="trio is a test dependency (pip install -e '.[tests]')")
trio_testing = pytest.importorskip("trio.testing")

import portmsg.trio as ptrio  # noqa: E402

WINE = portmsg.PLATFORM.startswith("wine")
WSAEOPNOTSUPP = 10045


@pytest.fixture(autouse=True, scope="module")
def _wine_shim():
    if not WINE:
        yield
        return
    from trio._core import _io_windows as w

    original = w._get_underlying_socket

    def underlying(sock, *, which=w.WSAIoctls.SIO_BASE_HANDLE):  # type: ignore[no-untyped-def]
        try:
            return original(sock, which=which)
        except OSError as exc:
            if which == w.WSAIoctls.SIO_BSP_HANDLE_SELECT and exc.winerror == WSAEOPNOTSUPP:
                return original(sock, which=w.WSAIoctls.SIO_BASE_HANDLE)
            raise

    w._get_underlying_socket = underlying
    yield
    w._get_underlying_socket = original


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((LOOPBACK[socket.AF_INET], 0))
    sock.setblocking(False)
    return sock


def test_recv_gives_the_message_with_its_metadata() -> None:
    async def main() -> None:
        with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            on = portmsg.enable(rx, Feature.PACKET_INFO)
            tx.sendto(b"hello", rx.getsockname())
            msg = await ptrio.recv(rx)
            assert msg.data == b"hello"
            assert Feature.PACKET_INFO not in on or str(msg.packet_info.address) == "127.0.0.1"

    trio.run(main)


def test_recv_waits_then_delivers() -> None:
    async def main() -> None:
        with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:

            async def later() -> None:
                await trio.sleep(0.1)
                tx.sendto(b"late", rx.getsockname())

            async with trio.open_nursery() as nursery:
                nursery.start_soon(later)
                assert (await ptrio.recv(rx)).data == b"late"

    trio.run(main)


def test_every_call_is_a_checkpoint() -> None:
    async def main() -> None:
        with _udp() as rx, _udp() as tx:
            tx.sendto(b"ready", rx.getsockname())
            time.sleep(0.05)
            with trio_testing.assert_checkpoints():
                await ptrio.recv(rx)
            with trio_testing.assert_checkpoints():
                await ptrio.send(tx, b"x", rx.getsockname())
            with trio_testing.assert_checkpoints():
                await ptrio.recv_batch(rx)

    trio.run(main)


def test_a_cancelled_recv_loses_nothing() -> None:
    async def main() -> None:
        with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            with trio.move_on_after(0.05) as scope:
                await ptrio.recv(rx)
            assert scope.cancelled_caught
            tx.sendto(b"kept", rx.getsockname())
            assert (await ptrio.recv(rx)).data == b"kept"

    trio.run(main)


def test_notify_closing_ends_a_waiting_recv() -> None:
    async def main() -> None:
        with _udp() as rx:

            async def close_soon() -> None:
                await trio.sleep(0.05)
                trio.lowlevel.notify_closing(rx)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(close_soon)
                with pytest.raises(trio.ClosedResourceError):
                    await ptrio.recv(rx)

    trio.run(main)


def test_trio_sockets_are_accepted() -> None:
    async def main() -> None:
        rx = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with rx, tx:
            await rx.bind(("127.0.0.1", 0))
            portmsg.enable(rx, Feature.PACKET_INFO)
            await ptrio.send(tx, b"via trio", rx.getsockname())
            batch = await ptrio.recv_batch(rx)
            assert [m.data for m in batch] == [b"via trio"]

    trio.run(main)


def test_a_blocking_socket_is_refused() -> None:
    async def main() -> None:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as blocking,
            pytest.raises(ValueError, match="non-blocking"),
        ):
            await ptrio.recv(blocking)

    trio.run(main)


def test_the_same_socket_across_two_runs() -> None:
    with _udp() as rx, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
        for payload in (b"first", b"second"):
            tx.sendto(payload, rx.getsockname())

            async def main() -> bytes:
                return (await ptrio.recv(rx)).data

            assert trio.run(main) == payload
