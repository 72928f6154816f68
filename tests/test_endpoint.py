"""portmsg.aio.create_datagram_endpoint: asyncio's datagram transport contract, with the metadata.

Runs on every loop tests/test_aio.py runs on (readiness and, on Windows,
the Proactor's completion engine).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import sys
from typing import Any

import pytest

import portmsg
from portmsg import Feature, aio

WINE = portmsg.PLATFORM.startswith("wine")


class Recorder(asyncio.DatagramProtocol):
    """A plain asyncio DatagramProtocol that notes every callback."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.got: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append(("made",))

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.got.put_nowait((data, addr))

    def error_received(self, exc: Exception) -> None:
        self.events.append(("error", exc))
        self.got.put_nowait((b"", exc))

    def pause_writing(self) -> None:
        self.events.append(("pause",))

    def resume_writing(self) -> None:
        self.events.append(("resume",))

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))
        if not self.lost.done():
            self.lost.set_result(exc)


class MessageRecorder(Recorder):
    def message_received(self, message: portmsg.Message) -> None:
        self.got.put_nowait((message, message.address))


class BatchRecorder(Recorder):
    def messages_received(self, messages: list[portmsg.Message]) -> None:
        for message in messages:
            self.got.put_nowait((message, message.address))


def test_a_plain_protocol_gets_what_asyncios_own_transport_gives(run) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        ours, ours_protocol = await aio.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        theirs, theirs_protocol = await loop.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        try:
            assert ours_protocol.events == [("made",)]
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                tx.bind(("127.0.0.1", 0))
                for transport in (ours, theirs):
                    for payload in (b"one", b"", b"three"):
                        tx.sendto(payload, transport.get_extra_info("sockname"))
                ours_got = [await asyncio.wait_for(ours_protocol.got.get(), 5) for _ in range(3)]
                sender = tx.getsockname()
                expected = [(b"one", sender), (b"", sender), (b"three", sender)]
                # asyncio's own Proactor transport loses a zero-length datagram (measured under Wine 8,
                # CPython 3.13): it is compared on the others only.
                expected_theirs = [expected[0], expected[2]] if aio.is_proactor(loop) else expected
                theirs_got = [await asyncio.wait_for(theirs_protocol.got.get(), 5) for _ in expected_theirs]
            assert ours_got == expected
            assert theirs_got == expected_theirs
            assert isinstance(ours, asyncio.DatagramTransport)
            assert ours.get_extra_info("peername") is None
            assert ours.get_extra_info("socket").getsockname() == ours.get_extra_info("sockname")
        finally:
            ours.close()
            theirs.close()
        assert await asyncio.wait_for(ours_protocol.lost, 5) is None
        assert ours_protocol.events[-1] == ("lost", None)

    run(main)


@pytest.mark.parametrize("protocol", [MessageRecorder, BatchRecorder], ids=["message_received", "messages_received"])
def test_a_message_protocol_gets_messages_with_metadata(run, protocol: type[Recorder]) -> None:
    async def main() -> None:
        transport, recorder = await aio.create_datagram_endpoint(
            protocol, local_addr=("127.0.0.1", 0), features=(Feature.PACKET_INFO, Feature.HOP_LIMIT)
        )
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                tx.sendto(b"meta", transport.get_extra_info("sockname"))
                message, _ = await asyncio.wait_for(recorder.got.get(), 5)
            assert isinstance(message, portmsg.Message)
            assert message.data == b"meta"
            assert str(message.packet_info.address) == "127.0.0.1"
        finally:
            transport.close()

    run(main)


def test_replies_leave_from_the_address_each_peer_asked(run) -> None:
    """The headline: one wildcard socket, replies by plain sendto(), each from the address asked."""

    async def main() -> None:
        transport, recorder = await aio.create_datagram_endpoint(Recorder, local_addr=("0.0.0.0", 0))
        port = transport.get_extra_info("sockname")[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(5)
                for destination in ("127.0.0.1", "127.0.0.2", "127.0.0.3"):
                    client.sendto(destination.encode(), (destination, port))
                    data, peer = await asyncio.wait_for(recorder.got.get(), 5)
                    transport.sendto(b"re:" + data, peer)
                    reply, source = await asyncio.get_running_loop().run_in_executor(None, client.recvfrom, 100)
                    assert reply == b"re:" + destination.encode()
                    if not WINE:  # Wine drops controls on send: replies there leave from the default address
                        assert source == (destination, port)
        finally:
            transport.close()

    run(main)


def test_sendmsg_attaches_controls_and_refuses_impossible_ones(run) -> None:
    async def main() -> None:
        transport, _ = await aio.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
                rx.bind(("127.0.0.1", 0))
                rx.settimeout(5)
                if Feature.HOP_LIMIT not in portmsg.enable(rx, Feature.HOP_LIMIT):
                    pytest.skip(f"portmsg.enable() reports HOP_LIMIT unavailable on {portmsg.BACKEND}")
                with pytest.raises(ValueError, match="AF_INET socket"):
                    transport.sendmsg(
                        b"x", rx.getsockname(), controls=[portmsg.PacketInfo(ipaddress.ip_address("::1"), 0)]
                    )
                if WINE:
                    pytest.skip("Wine drops controls on send (portmsg refuses them): only the refusal is checked here")
                transport.sendmsg(b"ttl", rx.getsockname(), controls=[portmsg.HopLimit(11)])
                assert portmsg.recv(rx).hop_limit == portmsg.HopLimit(11)
        finally:
            transport.close()

    run(main)


def test_a_connected_transport_sends_to_its_peer_only(run) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
            rx.bind(("127.0.0.1", 0))
            rx.settimeout(5)
            transport, _ = await aio.create_datagram_endpoint(Recorder, remote_addr=rx.getsockname())
            try:
                assert transport.get_extra_info("peername") == rx.getsockname()
                transport.sendto(b"to peer")
                transport.sendto(b"again", rx.getsockname())
                with pytest.raises(ValueError, match="Invalid address"):
                    transport.sendto(b"elsewhere", ("127.0.0.1", 9))
                assert [rx.recv(100) for _ in range(2)] == [b"to peer", b"again"]
            finally:
                transport.close()

    run(main)


def test_bad_data_is_a_type_error(run) -> None:
    async def main() -> None:
        transport, _ = await aio.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        try:
            with pytest.raises(TypeError, match="bytes-like"):
                transport.sendto("text", ("127.0.0.1", 9))  # type: ignore[arg-type]
        finally:
            transport.close()

    run(main)


@pytest.mark.skipif(sys.platform == "win32", reason="Wine never reports ICMP errors; Windows: WSAECONNRESET")
def test_icmp_errors_reach_error_received_and_reading_goes_on(run) -> None:
    async def main() -> None:
        gone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        gone.bind(("127.0.0.1", 0))
        address = gone.getsockname()
        gone.close()
        transport, recorder = await aio.create_datagram_endpoint(Recorder, remote_addr=address)
        try:
            transport.sendto(b"to nobody")
            _, error = await asyncio.wait_for(recorder.got.get(), 5)
            assert isinstance(error, ConnectionRefusedError)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as back:
                back.bind(address)
                back.sendto(b"still reading", transport.get_extra_info("sockname"))
                assert (await asyncio.wait_for(recorder.got.get(), 5))[0] == b"still reading"
        finally:
            transport.close()

    run(main)


# -- write buffering: a full Unix datagram pair makes a send block on demand (POSIX) -----------

posix_only = pytest.mark.skipif(
    not hasattr(socket, "AF_UNIX") or sys.platform == "win32", reason="needs a Unix datagram pair to fill (POSIX)"
)


def _full_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    b.setblocking(False)
    try:
        while True:
            a.send(b"f" * 512)
    except BlockingIOError:
        pass
    return a, b


def _drain(sock: socket.socket) -> list[bytes]:
    got = []
    try:
        while True:
            got.append(sock.recv(4096))
    except BlockingIOError:
        pass
    return got


@posix_only
def test_write_buffering_pauses_and_resumes_the_protocol(run) -> None:
    async def main() -> None:
        a, b = _full_pair()
        transport, recorder = await aio.create_datagram_endpoint(Recorder, sock=a, features=())
        try:
            transport.set_write_buffer_limits(high=1000, low=100)
            assert transport.get_write_buffer_limits() == (100, 1000)
            for i in range(5):
                transport.sendto(b"%d" % i * 300)
            assert transport.get_write_buffer_size() == 1500
            assert ("pause",) in recorder.events
            for _ in range(100):
                _drain(b)
                await asyncio.sleep(0.01)
                if transport.get_write_buffer_size() == 0:
                    break
            assert transport.get_write_buffer_size() == 0
            assert recorder.events[-1] == ("resume",)
        finally:
            transport.close()
            b.close()

    run(main)


@posix_only
def test_close_sends_what_is_buffered_first(run) -> None:
    async def main() -> None:
        a, b = _full_pair()
        transport, recorder = await aio.create_datagram_endpoint(Recorder, sock=a, features=())
        transport.sendto(b"buffered")
        transport.close()
        assert transport.is_closing()
        transport.sendto(b"after close")  # ignored, as asyncio's transports do
        await asyncio.sleep(0.05)
        assert not recorder.lost.done()
        got: list[bytes] = []
        for _ in range(100):
            got += _drain(b)
            await asyncio.sleep(0.01)
            if recorder.lost.done():
                break
        got += _drain(b)
        assert await asyncio.wait_for(recorder.lost, 5) is None
        assert got[-1] == b"buffered"
        assert b"after close" not in got
        assert a.fileno() == -1  # the transport closed its socket
        b.close()

    run(main)


@posix_only
def test_abort_drops_what_is_buffered(run) -> None:
    async def main() -> None:
        a, b = _full_pair()
        transport, recorder = await aio.create_datagram_endpoint(Recorder, sock=a, features=())
        transport.sendto(b"dropped")
        transport.abort()
        assert await asyncio.wait_for(recorder.lost, 5) is None
        assert b"dropped" not in _drain(b)
        b.close()

    run(main)


def test_the_limits_are_checked_as_asyncio_checks_them(run) -> None:
    async def main() -> None:
        transport, _ = await aio.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        try:
            assert transport.get_write_buffer_limits() == (16384, 65536)
            with pytest.raises(ValueError, match="must be >="):
                transport.set_write_buffer_limits(high=10, low=20)
        finally:
            transport.close()

    run(main)


def test_pinning_can_be_turned_off_and_is_off_for_a_specific_address(run) -> None:
    async def main() -> None:
        bound, _ = await aio.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0))
        wild, _ = await aio.create_datagram_endpoint(Recorder, local_addr=("0.0.0.0", 0))
        off, _ = await aio.create_datagram_endpoint(Recorder, local_addr=("0.0.0.0", 0), reply_from_destination=False)
        try:
            pinned = "portmsg.reply_from_destination"
            assert bound.get_extra_info(pinned) is False
            expected = Feature.PACKET_INFO in wild.get_extra_info("portmsg.enabled") and not WINE
            assert wild.get_extra_info(pinned) is expected
            assert (wild.get_extra_info("portmsg.why_not_pinned") is None) == (not WINE)
            assert off.get_extra_info(pinned) is False
        finally:
            for transport in (bound, wild, off):
                transport.close()

    run(main)


def test_socket_and_address_arguments_are_checked(run) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp, pytest.raises(ValueError, match="expected"):
            await aio.create_datagram_endpoint(Recorder, sock=tcp)
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
            pytest.raises(ValueError, match="can not be used"),
        ):
            await aio.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0), sock=udp)

    run(main)


# -- GSO: a loop iteration's sendto() burst as segmented sends ------------------------------

HAS_GSO = hasattr(portmsg.native, "UDP_SEGMENT")


def _drain_messages(sock: socket.socket) -> list[portmsg.Message]:
    got = []
    while True:
        try:
            got.append(portmsg.recv(sock))
        except BlockingIOError:
            return got


def _gro_receiver() -> socket.socket:
    """A loopback receiver that coalesces: a GSO send arrives as one burst (its segments), plain sends do not."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    if Feature.SEGMENT_OFFLOAD not in portmsg.enable(rx, Feature.SEGMENT_OFFLOAD):
        rx.close()
        pytest.skip("this host's loopback does not coalesce (no UDP_GRO)")
    return rx


@pytest.mark.skipif(not HAS_GSO, reason="UDP_SEGMENT is Linux's: the refusal elsewhere is the next test")
@pytest.mark.parametrize("gso", [True, False], ids=["gso", "plain"])
def test_gso_sends_a_run_to_one_peer_as_one_segmented_send(run, gso: bool) -> None:
    expected = [b"%03d" % i * 100 for i in range(10)] + [b"tail"]  # ten of 300 bytes, a shorter one ends the run

    async def main() -> None:
        with _gro_receiver() as rx:
            transport, _ = await aio.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), gso=gso
            )
            try:
                for data in expected:
                    transport.sendto(data, rx.getsockname())
                assert transport.get_write_buffer_size() == (sum(map(len, expected)) if gso else 0)
                await asyncio.sleep(0.05)
                assert transport.get_write_buffer_size() == 0
            finally:
                transport.close()
            messages = _drain_messages(rx)
            assert [piece for m in messages for piece in m.segments()] == expected
            coalesced = [m.segment_size.value for m in messages if m.segment_size]
            assert coalesced == ([300] if gso else [])

    run(main)


@pytest.mark.skipif(not HAS_GSO, reason="UDP_SEGMENT is Linux's: the refusal elsewhere is the next test")
def test_gso_keeps_each_peers_order_across_interleaved_sizes(run) -> None:
    async def main() -> None:
        with _gro_receiver() as one, _gro_receiver() as two:
            transport, _ = await aio.create_datagram_endpoint(
                asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), gso=True
            )
            sent: dict[Any, list[bytes]] = {one.getsockname(): [], two.getsockname(): []}
            try:
                for i in range(40):
                    to = one.getsockname() if i % 3 else two.getsockname()
                    data = bytes([i]) * (200 if i % 5 else 50)
                    sent[to].append(data)
                    transport.sendto(data, to)
                await asyncio.sleep(0.05)
            finally:
                transport.close()
            for sock in (one, two):
                assert [p for m in _drain_messages(sock) for p in m.segments()] == sent[sock.getsockname()]

    run(main)


@pytest.mark.skipif(not HAS_GSO, reason="UDP_SEGMENT is Linux's: the refusal elsewhere is the next test")
def test_gso_datagrams_queued_before_close_still_go(run) -> None:
    async def main() -> None:
        with _gro_receiver() as rx:
            transport, protocol = await aio.create_datagram_endpoint(Recorder, local_addr=("127.0.0.1", 0), gso=True)
            for i in range(5):
                transport.sendto(b"%d" % i * 10, rx.getsockname())
            transport.close()  # before the loop ran the flush
            await asyncio.wait_for(protocol.lost, 5)
            await asyncio.sleep(0.05)
            assert [p for m in _drain_messages(rx) for p in m.segments()] == [b"%d" % i * 10 for i in range(5)]

    run(main)


def test_gso_is_refused_where_the_os_has_no_udp_segmentation(run) -> None:
    if HAS_GSO:
        pytest.skip("this OS has UDP_SEGMENT: the tests above use it")

    async def main() -> None:
        with pytest.raises(ValueError, match="UDP_SEGMENT"):
            await aio.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0), gso=True)

    run(main)
