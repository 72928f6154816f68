"""The endpoint against asyncio's own: the same scenario through both, on every loop, the same events.

Each test is one clause of asyncio's documented DatagramTransport contract
(or of portmsg's own promises where asyncio has none).  Where asyncio's own
endpoint can run the scenario, it runs beside portmsg's and the two must
agree.  On Windows (Wine here) the ProactorEventLoop runs the completion
engine and the SelectorEventLoop the readiness one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import socket
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
from helpers import FAMILIES, LOOPBACK, in_namespace

import portmsg
from portmsg import Feature, aio

WINE = portmsg.PLATFORM.startswith("wine")
family_param = pytest.mark.parametrize("family", FAMILIES, ids=lambda f: socket.AddressFamily(f).name)


class Events(asyncio.DatagramProtocol):
    """A plain DatagramProtocol noting every callback in order; raises where told to."""

    def __init__(self, *, raise_in: str = "", times: int = 1 << 30, close_on_first: bool = False) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.datagrams: asyncio.Queue[tuple[bytes, Any]] = asyncio.Queue()
        self.errors: asyncio.Queue[Exception] = asyncio.Queue()
        self.raise_in, self.times, self.close_on_first = raise_in, times, close_on_first

    def _maybe_raise(self, where: str) -> None:
        if self.raise_in == where and self.times > 0:
            self.times -= 1
            msg = f"raised in {where}"
            raise RuntimeError(msg)

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.append(("made",))
        self._maybe_raise("connection_made")

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.events.append(("datagram", data))
        self.datagrams.put_nowait((data, addr))
        if self.close_on_first:
            self.transport.close()
        self._maybe_raise("datagram_received")

    def error_received(self, exc: Exception) -> None:
        self.events.append(("error", type(exc)))
        self.errors.put_nowait(exc)
        self._maybe_raise("error_received")

    def connection_lost(self, exc: Exception | None) -> None:
        self.events.append(("lost", exc))


class MessageEvents(Events):
    def message_received(self, message: portmsg.Message) -> None:
        self.datagram_received(message.data, message.address)


class BatchEvents(Events):
    def messages_received(self, messages: list[portmsg.Message]) -> None:
        for message in messages:
            self.datagrams.put_nowait((message.data, message.address))
        self.events.append(("batch", len(messages)))
        self._maybe_raise("messages_received")


def asyncio_reference() -> bool:
    """Whether the running loop's own endpoint is asyncio's (uvloop's departs from asyncio's contract
    in places, measured: it connects with allow_broadcast, words AF_UNIX and port errors its own way,
    closes the transport when connection_made raises): there portmsg is held to asyncio's contract."""
    return isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop)


def reference_makers() -> list[Any]:
    """create_datagram_endpoint of asyncio (where it is the loop's own) and of portmsg."""
    loop = asyncio.get_running_loop()
    return ([loop.create_datagram_endpoint] if asyncio_reference() else []) + [aio.create_datagram_endpoint]


async def both(
    factory: Any, *, strict: bool = False, reference: bool = True, **kwargs: Any
) -> list[tuple[asyncio.DatagramTransport, Any]]:
    """The same endpoint made by the loop's own and by portmsg's: [(theirs), (ours)].

    strict: a clause where uvloop departs from asyncio: only portmsg's, on uvloop.
    reference: False where the loop's own endpoint departs from the clause (said at the call).
    """
    if not reference:
        makers = [aio.create_datagram_endpoint]
    elif strict:
        makers = reference_makers()
    else:
        makers = [asyncio.get_running_loop().create_datagram_endpoint, aio.create_datagram_endpoint]
    return [await make(factory, **kwargs) for make in makers]


def caught_loop_errors() -> list[dict[str, Any]]:
    """Record what reaches this loop's exception handler (a test that expects some)."""
    caught: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: caught.append(context))
    return caught


async def take(queue: asyncio.Queue[Any], n: int, timeout: float = 5) -> list[Any]:
    return [await asyncio.wait_for(queue.get(), timeout) for _ in range(n)]


async def replies(sock: socket.socket, n: int, timeout: float = 5) -> list[tuple[bytes, Any]]:
    """n datagrams from a plain socket, read while the loop runs (the endpoint is still sending)."""
    got: list[tuple[bytes, Any]] = []
    deadline = time.monotonic() + timeout
    sock.setblocking(False)
    while len(got) < n and time.monotonic() < deadline:
        try:
            got.append(sock.recvfrom(65535))
        except BlockingIOError:
            await asyncio.sleep(0.01)
    return got


# -- 1. whole datagrams -------------------------------------------------------------------------


@family_param
def test_a_plain_protocol_gets_every_datagram_whole_as_asyncio_does(run, family: int) -> None:
    sizes = [1, 1500, 2048, 2049, 4096, 9000, 65507] + ([65527] if family == socket.AF_INET6 else [])

    async def main() -> None:
        endpoints = await both(Events, local_addr=(LOOPBACK[family], 0))
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as tx:
                tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
                for transport, protocol in endpoints:
                    got = []
                    for n in sizes:  # one at a time: nothing depends on the receive buffer's size
                        tx.sendto(b"x" * n, transport.get_extra_info("sockname"))
                        got.append(len((await asyncio.wait_for(protocol.datagrams.get(), 5))[0]))
                    assert got == sizes
        finally:
            for transport, _ in endpoints:
                transport.close()

    run(main)


class Messages(Events):
    def message_received(self, message: portmsg.Message) -> None:
        self.datagrams.put_nowait(message)  # type: ignore[arg-type]


def test_a_smaller_bufsize_never_hands_a_cut_datagram_to_datagram_received(run) -> None:
    async def main() -> None:
        plain, plain_events = await aio.create_datagram_endpoint(Events, local_addr=("127.0.0.1", 0), bufsize=100)
        typed, typed_events = await aio.create_datagram_endpoint(Messages, local_addr=("127.0.0.1", 0), bufsize=100)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                for transport in (plain, typed):
                    tx.sendto(b"L" * 200, transport.get_extra_info("sockname"))
                    tx.sendto(b"s" * 50, transport.get_extra_info("sockname"))
                error = await asyncio.wait_for(plain_events.errors.get(), 5)
                assert isinstance(error, OSError)
                assert error.errno == errno.EMSGSIZE
                assert [data for data, _ in await take(plain_events.datagrams, 1)] == [b"s" * 50]
                cut, whole = await take(typed_events.datagrams, 2)
                assert (cut.data, cut.truncated, whole.data, whole.truncated) == (b"L" * 100, True, b"s" * 50, False)
        finally:
            plain.close()
            typed.close()

    run(main)


# -- 2. each reply from where its request went ---------------------------------------------------


class Echo(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.seen = 0

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.seen += 1
        if data.startswith(b"to"):
            self.transport.sendto(data, addr)


def _pinning(transport: Any) -> None:
    if not transport.get_extra_info("portmsg.reply_from_destination"):
        why = transport.get_extra_info("portmsg.why_not_pinned") or "PACKET_INFO is off"
        transport.close()
        pytest.skip(f"portmsg reports replies unpinned here: {why}")


def test_replies_in_one_batch_each_leave_from_where_their_request_went(run) -> None:
    async def main() -> None:
        transport, _ = await aio.create_datagram_endpoint(Echo, local_addr=("0.0.0.0", 0))
        _pinning(transport)
        port = transport.get_extra_info("sockname")[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.bind(("127.0.0.1", 0))
                client.settimeout(5)
                client.sendto(b"to .1", ("127.0.0.1", port))
                client.sendto(b"to .2", ("127.0.0.2", port))
                time.sleep(0.05)  # both are queued before the loop looks: one batch
                answers = sorted((data, source[0]) for data, source in await replies(client, 2))
            assert answers == [(b"to .1", "127.0.0.1"), (b"to .2", "127.0.0.2")]
        finally:
            transport.close()

    run(main)


@pytest.mark.slow
def test_a_later_reply_follows_the_peers_latest_destination_least_recently_used_forgotten(run) -> None:
    async def main() -> None:
        transport, echo = await aio.create_datagram_endpoint(Echo, local_addr=("0.0.0.0", 0))
        _pinning(transport)
        port = transport.get_extra_info("sockname")[1]

        async def others(count: int) -> None:
            for start in range(0, count, 100):
                target = echo.seen + min(100, count - start)
                for _ in range(min(100, count - start)):
                    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                        other.sendto(b"hello", ("127.0.0.1", port))
                while echo.seen < target:
                    await asyncio.sleep(0.005)

        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
                peer.bind(("127.0.0.1", 0))
                peer.settimeout(5)
                peer.sendto(b"hello", ("127.0.0.2", port))
                await others(3000)
                peer.sendto(b"hello", ("127.0.0.2", port))  # seen again: among the most recent now
                await others(1728)
                transport.sendto(b"late", peer.getsockname())
                data, source = peer.recvfrom(100)
            assert (data, source[0]) == (b"late", "127.0.0.2")
        finally:
            transport.close()

    run(main)


# -- 4. a raising protocol never stops receiving --------------------------------------------------


@pytest.mark.parametrize(
    ("factory", "where"),
    [(Events, "datagram_received"), (MessageEvents, "datagram_received"), (BatchEvents, "messages_received")],
    ids=["datagram_received", "message_received", "messages_received"],
)
def test_a_raising_protocol_is_reported_and_receiving_goes_on(run, factory: type[Events], where: str) -> None:
    async def main() -> None:
        caught = caught_loop_errors()
        endpoints = (
            [
                await asyncio.get_running_loop().create_datagram_endpoint(
                    lambda: factory(raise_in=where, times=8), local_addr=("127.0.0.1", 0)
                )
            ]
            if factory is Events
            else []
        )
        endpoints.append(
            await aio.create_datagram_endpoint(lambda: factory(raise_in=where, times=8), local_addr=("127.0.0.1", 0))
        )
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                for transport, protocol in endpoints:
                    caught.clear()
                    got = []
                    for i in range(20):
                        tx.sendto(b"%d" % i, transport.get_extra_info("sockname"))
                        got += await take(protocol.datagrams, 1)
                    assert [data for data, _ in got] == [b"%d" % i for i in range(20)]
                    assert len(caught) == 8
                    assert all(str(context["exception"]) == f"raised in {where}" for context in caught)
        finally:
            for transport, _ in endpoints:
                transport.close()

    run(main)


def _closed_port(family: int) -> int:
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.bind((LOOPBACK[family], 0))
        return int(probe.getsockname()[1])


def test_a_raising_error_received_never_leaves_the_endpoint_deaf(run) -> None:
    """uvloop drops a reader after POLLERR; portmsg registers it again before error_received runs."""

    async def main() -> None:
        if WINE and aio.is_proactor(asyncio.get_running_loop()):
            pytest.skip(
                f"{portmsg.PLATFORM}: after an ICMP error on a connected socket, overlapped receives posted before the next "
                "datagram never complete (the stdlib's loop.sock_recv hangs alike, measured)"
            )
        caught = caught_loop_errors()
        port = _closed_port(socket.AF_INET)
        # asyncio's Proactor transport stops reading when error_received raises (CPython 3.13, measured):
        # the reference runs on selector loops only.
        reference = not aio.is_proactor(asyncio.get_running_loop())
        endpoints = await both(
            lambda: Events(raise_in="error_received"), reference=reference, remote_addr=("127.0.0.1", port)
        )
        try:
            for transport, protocol in endpoints:
                transport.sendto(b"into the void")
                try:
                    await asyncio.wait_for(protocol.errors.get(), 1)
                except asyncio.TimeoutError:
                    pytest.skip(f"{portmsg.PLATFORM} reported no ICMP error to a connected socket (Wine reports none)")
            for transport, protocol in endpoints:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as peer:
                    peer.bind(("127.0.0.1", port))
                    peer.sendto(b"still here", transport.get_extra_info("sockname"))
                    assert (await take(protocol.datagrams, 1))[0][0] == b"still here"
            ours = endpoints[-1][0]
            # uvloop's own transport sends this one to sys.unraisablehook instead of the loop's handler.
            assert [str(c["exception"]) for c in caught if c.get("transport") is ours] == ["raised in error_received"]
        finally:
            for transport, _ in endpoints:
                transport.close()

    run(main)


# -- 9. asyncio's contract, clause by clause ---------------------------------------------------


def test_close_inside_datagram_received_ends_delivery(run) -> None:
    async def main() -> None:
        endpoints = await both(lambda: Events(close_on_first=True), local_addr=("127.0.0.1", 0))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            for transport, _ in endpoints:
                for payload in (b"1", b"2", b"3"):
                    tx.sendto(payload, transport.get_extra_info("sockname"))
            time.sleep(0.05)  # all three queued before the loop looks
            await asyncio.sleep(0.3)
        theirs, ours = (protocol.events for _, protocol in endpoints)
        assert ours == theirs == [("made",), ("datagram", b"1"), ("lost", None)]

    run(main)


def test_an_exception_in_connection_made_is_reported_and_reading_starts(run) -> None:
    async def main() -> None:
        caught = caught_loop_errors()
        endpoints = await both(lambda: Events(raise_in="connection_made"), strict=True, local_addr=("127.0.0.1", 0))
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                for transport, protocol in endpoints:
                    tx.sendto(b"heard", transport.get_extra_info("sockname"))
                    assert (await take(protocol.datagrams, 1))[0][0] == b"heard"
            assert [str(c["exception"]) for c in caught] == ["raised in connection_made"] * len(endpoints)
        finally:
            for transport, _ in endpoints:
                transport.close()
        await asyncio.sleep(0.05)
        assert [p.events[-1] for _, p in endpoints] == [("lost", None)] * len(endpoints)

    run(main)


def test_a_family_alone_gives_an_unbound_endpoint_that_sends(run) -> None:
    async def main() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rx:
            rx.bind(("127.0.0.1", 0))
            rx.settimeout(5)
            for transport, _ in await both(Events, family=socket.AF_INET):
                assert transport.get_extra_info("peername") is None
                transport.sendto(b"unbound", rx.getsockname())
                assert rx.recv(100) == b"unbound"
                transport.close()
            for make in (asyncio.get_running_loop().create_datagram_endpoint, aio.create_datagram_endpoint):
                with pytest.raises(ValueError, match="unexpected address family"):
                    await make(Events)

    run(main)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX") or sys.platform == "win32", reason="AF_UNIX datagrams: POSIX")
def test_an_af_unix_path_endpoint_as_asyncio_makes_it(run) -> None:
    async def main() -> None:
        folder = Path(tempfile.mkdtemp())
        paths = [str(folder / name) for name in ("theirs", "ours")]
        makers = reference_makers()
        paths = paths[-len(makers) :]
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as stale:
            stale.bind(paths[-1])  # a socket file an earlier server left: removed before binding
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as tx:
            tx.bind(str(folder / "client"))
            for make, path in zip(makers, paths, strict=True):
                transport, protocol = await make(Events, local_addr=path, family=socket.AF_UNIX)
                assert transport.get_extra_info("sockname") == path
                tx.sendto(b"unix", path)
                assert await take(protocol.datagrams, 1) == [(b"unix", tx.getsockname())]
                transport.close()
                with pytest.raises(TypeError, match="string is expected"):
                    await make(Events, local_addr=("127.0.0.1", 0), family=socket.AF_UNIX)

    run(main)


def test_remote_addr_with_allow_broadcast_stays_unconnected_and_hears_anyone(run) -> None:
    async def main() -> None:
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as responder,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger,
        ):
            responder.bind(("127.0.0.1", 0))
            responder.settimeout(5)
            stranger.bind(("127.0.0.1", 0))
            # asyncio's Proactor transport cannot: its receive on the still unbound socket fails with
            # WSAEINVAL and its query never leaves (measured, Wine 8 / CPython 3.13).
            reference = not aio.is_proactor(asyncio.get_running_loop())
            endpoints = await both(
                Events, strict=True, reference=reference, remote_addr=responder.getsockname(), allow_broadcast=True
            )
            try:
                for transport, protocol in endpoints:
                    assert transport.get_extra_info("peername") is None
                    transport.sendto(b"query")
                    data, asker = responder.recvfrom(100)
                    assert data == b"query"
                    with pytest.raises(ValueError, match="Invalid address"):
                        transport.sendto(b"elsewhere", ("127.0.0.9", 9))
                    stranger.sendto(b"answer", asker)  # from another address: a connected socket drops it
                    assert (await take(protocol.datagrams, 1))[0] == (b"answer", stranger.getsockname())
            finally:
                for transport, _ in endpoints:
                    transport.close()

    run(main)


def test_reuse_port_is_taken_or_refused_as_asyncio_does(run) -> None:
    async def main() -> None:
        outcomes = []
        for make in (asyncio.get_running_loop().create_datagram_endpoint, aio.create_datagram_endpoint):
            try:
                transport, _ = await make(Events, local_addr=("127.0.0.1", 0), reuse_port=True)
            except ValueError as exc:
                outcomes.append(str(exc))
            else:
                outcomes.append("made")
                transport.close()
        assert outcomes[0] == outcomes[1]
        assert outcomes[0] == (
            "made" if hasattr(socket, "SO_REUSEPORT") else "reuse_port not supported by socket module"
        )

    run(main)


def test_a_blocking_sock_is_made_non_blocking_as_asyncio_does(run) -> None:
    async def main() -> None:
        for make in (asyncio.get_running_loop().create_datagram_endpoint, aio.create_datagram_endpoint):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("127.0.0.1", 0))
            transport, protocol = await make(Events, sock=sock)
            assert sock.gettimeout() == 0
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
                tx.sendto(b"blocking once", sock.getsockname())
                assert (await take(protocol.datagrams, 1))[0][0] == b"blocking once"
            transport.close()

    run(main)


# -- 7. bad arguments fail at the call, as asyncio's do -------------------------------------------


def test_bad_arguments_fail_at_the_call_as_asyncio_fails_them(run) -> None:
    async def main() -> None:
        caught = caught_loop_errors()
        for make in reference_makers():
            with pytest.raises(OverflowError):
                await make(Events, local_addr=("127.0.0.1", 70000))
            # asyncio before 3.11 checks this with an assert (AssertionError); portmsg raises 3.11's TypeError.
            old_asyncio = make is not aio.create_datagram_endpoint and sys.version_info < (3, 11)
            with pytest.raises(AssertionError if old_asyncio else TypeError, match="2-tuple is expected"):
                await make(Events, local_addr="127.0.0.1:53")
            with (
                socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp,
                pytest.raises(ValueError, match=r"(?i)socket was expected"),
            ):
                await make(Events, sock=tcp)
        with pytest.raises(ValueError, match="bufsize must be 0 or more"):
            await aio.create_datagram_endpoint(Events, local_addr=("127.0.0.1", 0), bufsize=-1)
        with tempfile.TemporaryFile() as file, pytest.raises(TypeError, match=r"expected a socket\.socket"):
            await aio.create_datagram_endpoint(Events, sock=file)
        closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        closed.close()
        with pytest.raises(OSError) as ours:
            await aio.create_datagram_endpoint(Events, sock=closed)
        with pytest.raises(OSError) as stdlib:
            closed.recv(1)
        assert ours.value.errno == stdlib.value.errno
        await asyncio.sleep(0.1)
        assert caught == []

    run(main)


# -- 8. a GSO run the route refuses after waiting for room goes out one by one ----------------------

_GSO_AFTER_EAGAIN = """
import asyncio, socket, portmsg
from portmsg import aio

async def main():
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    rx.bind(("127.0.0.1", 0))
    rx.setblocking(False)
    errors = []

    class P(asyncio.DatagramProtocol):
        def error_received(self, exc):
            errors.append(exc)

    t, _ = await aio.create_datagram_endpoint(P, local_addr=("127.0.0.1", 0), gso=True, features=())
    t.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    fillers = 0
    while t.get_write_buffer_size() == 0:  # until the send buffer is full and the transport holds data
        for _ in range(8):
            t.sendto(b"f" * 1000, rx.getsockname())
            fillers += 1
        await asyncio.sleep(0)
    for i in range(3):  # 1300-byte segments: more than this route's 1280-byte MTU lets UDP_SEGMENT cut
        t.sendto(bytes([65 + i]) * 1300, rx.getsockname())
    got = []
    for _ in range(2000):
        await asyncio.sleep(0.01)
        while True:
            try:
                got.append(rx.recv(2000))
            except BlockingIOError:
                break
        if t.get_write_buffer_size() == 0 and len(got) >= fillers + 3:
            break
    print(fillers > 0, len(got) - fillers, [g[:1] for g in got if len(g) == 1300], errors)
    t.close()

asyncio.run(main())
"""


@pytest.mark.skipif(not hasattr(portmsg.native, "UDP_SEGMENT"), reason="UDP_SEGMENT is Linux's")
def test_a_gso_run_refused_after_waiting_for_room_goes_out_one_by_one() -> None:
    """For real: a namespace whose loopback has a 1280-byte MTU (UDP_SEGMENT refuses larger segments
    with EINVAL) and a token-bucket qdisc (so the send buffer fills and sends wait for room)."""
    setup = "ip link set lo up mtu 1280 && tc qdisc add dev lo root tbf rate 2mbit burst 4000 latency 5s"
    out = in_namespace(_GSO_AFTER_EAGAIN, setup=setup)
    assert out.strip() == "True 3 [b'A', b'B', b'C'] []"


# -- 10. unclosed transports warn, as asyncio's do ------------------------------------------------


def test_an_unclosed_transport_warns_and_closes_its_socket() -> None:
    loop = asyncio.new_event_loop()
    transport, protocol = loop.run_until_complete(aio.create_datagram_endpoint(Events, local_addr=("127.0.0.1", 0)))
    sock = transport.get_extra_info("socket")
    del transport, protocol  # the protocol holds its transport too
    loop.close()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        gc.collect()
    assert any(issubclass(w.category, ResourceWarning) and "unclosed transport" in str(w.message) for w in seen)
    assert sock.fileno() == -1


def test_get_extra_info_says_what_is_enabled_and_whether_replies_are_pinned(run) -> None:
    async def main() -> None:
        transport, _ = await aio.create_datagram_endpoint(
            Events, local_addr=("0.0.0.0", 0), features=(Feature.PACKET_INFO, Feature.HOP_LIMIT)
        )
        try:
            on = transport.get_extra_info("portmsg.enabled")
            assert on == portmsg.enable(transport.get_extra_info("socket"), Feature.PACKET_INFO, Feature.HOP_LIMIT)
            pinned = transport.get_extra_info("portmsg.reply_from_destination")
            why = transport.get_extra_info("portmsg.why_not_pinned")
            assert pinned == (Feature.PACKET_INFO in on and why is None)
            assert (why is not None) == bool(WINE)
        finally:
            transport.close()

    run(main)


# -- replies made in one batch go out together, in order ---------------------------------------------


class Echoes(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


@pytest.mark.parametrize("batch", [True, False], ids=["batched", "one-by-one"])
def test_replies_made_in_one_batch_go_out_in_order(run, batch: bool) -> None:
    async def main() -> None:
        transport, _ = await aio.create_datagram_endpoint(Echoes, local_addr=("127.0.0.1", 0), batch_replies=batch)
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(5)
                for i in range(20):
                    client.sendto(b"%02d" % i, transport.get_extra_info("sockname"))
                time.sleep(0.05)  # all queued: one wakeup reads them as one batch
                assert [data for data, _ in await replies(client, 20)] == [b"%02d" % i for i in range(20)]
        finally:
            transport.close()

    run(main)


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX") or sys.platform == "win32", reason="a full AF_UNIX pair (POSIX)")
def test_batched_replies_that_find_no_room_wait_in_order(run) -> None:
    async def main() -> None:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.setblocking(False)
        b.setblocking(False)
        fillers = 0
        while True:
            try:
                a.send(b"f")
                fillers += 1
            except BlockingIOError:
                break
        transport, _ = await aio.create_datagram_endpoint(Echoes, sock=a, features=())
        try:
            for i in range(5):
                b.send(b"reply %d" % i)
            await asyncio.sleep(0.1)
            assert transport.get_write_buffer_size() > 0  # held, found no room, queued
            got: list[bytes] = []
            for _ in range(300):
                with contextlib.suppress(BlockingIOError):
                    while True:
                        got.append(b.recv(100))
                if len(got) >= fillers + 5:
                    break
                await asyncio.sleep(0.01)
            assert got == [b"f"] * fillers + [b"reply %d" % i for i in range(5)]
        finally:
            transport.close()
            b.close()

    run(main)
