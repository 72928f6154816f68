"""The loop-level switch, with code nobody here wrote, unmodified: aioquic's serve() and connect(),
python-zeroconf, dnspython's asyncio backend.  Each calls loop.create_datagram_endpoint itself.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
from typing import TYPE_CHECKING, Any

import pytest
from helpers import DnsResponder, certificate

import portmsg
from portmsg import Feature, aio
from portmsg._transport import DatagramTransport

if TYPE_CHECKING:
    from pathlib import Path

WINE = portmsg.PLATFORM.startswith("wine")


class Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.transport.sendto(data, addr)


def test_install_switches_every_create_datagram_endpoint_of_a_loop_and_uninstall_undoes_it(run) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        assert aio.install(features=(Feature.PACKET_INFO, Feature.HOP_LIMIT)) is loop
        transport, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        try:
            assert isinstance(transport, DatagramTransport)
            assert Feature.HOP_LIMIT in transport.get_extra_info("portmsg.enabled") or WINE
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
                client.settimeout(5)
                client.sendto(b"switched", transport.get_extra_info("sockname"))
                await asyncio.sleep(0.1)
                assert client.recv(100) == b"switched"
        finally:
            transport.close()
        aio.uninstall()
        theirs, _ = await loop.create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        assert not isinstance(theirs, DatagramTransport)
        theirs.close()

    run(main)


def test_the_switch_refuses_reuse_address_as_asyncio_does(run) -> None:
    async def main() -> None:
        aio.install()
        with pytest.raises(ValueError, match="reuse_address"):
            await asyncio.get_running_loop().create_datagram_endpoint(
                Echo, local_addr=("127.0.0.1", 0), reuse_address=True
            )

    run(main)


def test_a_loop_factory_and_run_switch_new_loops() -> None:
    async def made() -> type:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Echo, local_addr=("127.0.0.1", 0))
        transport.close()
        return type(transport)

    assert aio.run(made()) is DatagramTransport
    if sys.version_info >= (3, 12):
        assert asyncio.run(made(), loop_factory=aio.loop_factory()) is DatagramTransport
    assert asyncio.run(made()) is not DatagramTransport  # other loops are left alone


# -- aioquic: serve() and connect(), multi-homed -----------------------------------------------


@pytest.fixture
def quic() -> Any:
    pytest.importorskip(
        "aioquic", reason="aioquic is not installed here (a test dependency: pip install -e '.[tests]')"
    )
    try:
        import cryptography.hazmat.bindings._rust  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"cryptography does not load here ({portmsg.PLATFORM}): {exc}")
    import aioquic.asyncio

    return aioquic.asyncio


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
@pytest.mark.parametrize("ask", ["127.0.0.2", "127.0.0.3"])
def test_aioquic_serve_and_connect_unmodified_on_a_switched_loop(
    bind: str, ask: str, tmp_path: Path, quic: Any
) -> None:
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import StreamDataReceived

    class Streams(QuicConnectionProtocol):
        def quic_event_received(self, event: Any) -> None:
            if isinstance(event, StreamDataReceived):
                self._quic.send_stream_data(event.stream_id, event.data, end_stream=event.end_stream)
                self.transmit()

    async def main() -> bytes:
        server_config = QuicConfiguration(is_client=False, alpn_protocols=["portmsg"], idle_timeout=5)
        server_config.load_cert_chain(*certificate(tmp_path))
        if bind == "::":
            with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
                if probe.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
                    pytest.skip(f"an AF_INET6 socket is IPv6-only by default on {portmsg.PLATFORM}")
        server = await quic.serve(bind, 0, configuration=server_config, create_protocol=Streams)
        transport = server._transport  # aioquic keeps the endpoint's transport here
        assert isinstance(transport, DatagramTransport)
        if not transport.get_extra_info("portmsg.reply_from_destination"):
            server.close()
            pytest.skip(f"replies unpinned here: {transport.get_extra_info('portmsg.why_not_pinned')}")
        client_config = QuicConfiguration(is_client=True, alpn_protocols=["portmsg"], idle_timeout=5)
        client_config.verify_mode = ssl.CERT_NONE
        try:
            async with quic.connect(ask, transport.get_extra_info("sockname")[1], configuration=client_config) as c:
                reader, writer = await c.create_stream()
                writer.write(b"ping")
                writer.write_eof()
                return await asyncio.wait_for(reader.read(), 10)
        finally:
            server.close()

    assert aio.run(main()) == b"ping"


# -- dnspython's asyncio backend ------------------------------------------------------------------


class Responder(DnsResponder):
    ANSWER = "192.0.2.53"


def test_dnspython_async_query_through_a_switched_loop_from_the_address_asked() -> None:
    asyncquery = pytest.importorskip("dns.asyncquery", reason="dnspython is a test dependency")
    import dns.message

    async def main() -> str:
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(Responder, local_addr=("0.0.0.0", 0))
        try:
            if not transport.get_extra_info("portmsg.reply_from_destination"):
                pytest.skip(f"replies unpinned here: {transport.get_extra_info('portmsg.why_not_pinned')}")
            query = dns.message.make_query("portmsg.example.", "A")
            port = transport.get_extra_info("sockname")[1]
            answer = await asyncquery.udp(query, "127.0.0.2", port=port, timeout=5)  # its client: switched too
            return str(answer.answer[0][0])
        finally:
            transport.close()

    assert aio.run(main()) == "192.0.2.53"


# -- python-zeroconf: an answer larger than 2 KB ---------------------------------------------------------


def test_zeroconf_resolves_a_service_whose_answer_is_larger_than_2_kb_on_a_switched_loop() -> None:
    pytest.importorskip("zeroconf", reason="zeroconf is a test dependency (pip install -e '.[tests]')")
    from zeroconf import IPVersion
    from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

    async def main() -> tuple[bool, int, set[str]]:
        try:
            server = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        except OSError as exc:
            pytest.skip(f"zeroconf cannot join its multicast group on loopback here: {exc}")
        properties = {b"k%02d" % i: b"x" * 200 for i in range(15)}  # 15 TXT strings: a 3 KB answer
        kind, name = "_portmsg._udp.local.", "big._portmsg._udp.local."
        info = AsyncServiceInfo(kind, name, addresses=[socket.inet_aton("127.0.0.1")], port=4242, properties=properties)
        await server.async_register_service(info)
        client = AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only)
        try:
            found = AsyncServiceInfo(kind, name)
            resolved = await found.async_request(client.zeroconf, 3000)
            size = sum(len(value or b"") for value in (found.properties or {}).values())
            kinds = {type(p.transport.transport).__name__ for p in client.zeroconf.engine.protocols}
            return resolved, size, kinds
        finally:
            await client.async_close()
            await server.async_unregister_service(info)
            await server.async_close()

    resolved, size, kinds = aio.run(main())
    if not resolved and WINE:
        pytest.skip("zeroconf's multicast on Wine's loopback resolved nothing (measured): a real host shows this")
    assert (resolved, size) == (True, 3000)
    assert kinds == {"DatagramTransport"}
