"""Frameworks nobody here wrote, on portmsg's datagram endpoint: aioquic's QUIC server and dnspython.

The multi-homed case is the point: a server bound to a wildcard address,
asked at 127.0.0.2 and 127.0.0.3.  With portmsg's endpoint every answer
comes from the address asked, and the clients are satisfied; with asyncio's
own transport the answers come from 127.0.0.1 and the same clients fail.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import TYPE_CHECKING, Any

import pytest
from helpers import DnsResponder
from helpers import certificate as _certificate

import portmsg
from portmsg import aio

if TYPE_CHECKING:
    from pathlib import Path

WINE = portmsg.PLATFORM.startswith("wine")
NO_PINNING = (
    f"{portmsg.PLATFORM} drops controls on send, so no reply can be pinned to the address asked there (portmsg refuses "
    "such sends, and the endpoint then replies without them): only Linux and a real Windows host show this"
)


# -- aioquic ------------------------------------------------------------------------------


async def _quic_round_trip(make_endpoint: Any, bind: str, ask: str, cert: tuple[str, str]) -> bytes:
    """Serve QUIC on `bind` (an echo on every stream), connect at `ask`, send b'ping' on a stream."""
    from aioquic.asyncio import connect
    from aioquic.asyncio.protocol import QuicConnectionProtocol
    from aioquic.asyncio.server import QuicServer
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.events import StreamDataReceived

    class Echo(QuicConnectionProtocol):
        def quic_event_received(self, event: Any) -> None:
            if isinstance(event, StreamDataReceived):
                self._quic.send_stream_data(event.stream_id, event.data, end_stream=event.end_stream)
                self.transmit()

    server_config = QuicConfiguration(is_client=False, alpn_protocols=["portmsg"], idle_timeout=5)
    server_config.load_cert_chain(*cert)
    # Built as aioquic.asyncio.server.serve() builds it, handed to the endpoint under test.
    transport, _ = await make_endpoint(
        lambda: QuicServer(configuration=server_config, create_protocol=Echo), local_addr=(bind, 0)
    )
    port = transport.get_extra_info("sockname")[1]
    client_config = QuicConfiguration(is_client=True, alpn_protocols=["portmsg"], idle_timeout=5)
    client_config.verify_mode = ssl.CERT_NONE
    try:
        async with connect(ask, port, configuration=client_config) as client:
            reader, writer = await client.create_stream()
            writer.write(b"ping")
            writer.write_eof()
            return await reader.read()
    finally:
        transport.close()


@pytest.fixture
def crypto_loads() -> None:
    """aioquic needs cryptography's Rust extension, which does not load under Wine 8 (measured: DLL load failed)."""
    pytest.importorskip(
        "aioquic", reason="aioquic is not installed here (a test dependency: pip install -e '.[tests]')"
    )
    try:
        import cryptography.hazmat.bindings._rust  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"cryptography does not load here ({portmsg.PLATFORM}): {exc}")


def _why_ipv4_cannot_reach(bind: str) -> str | None:
    """Why an IPv4 client cannot reach a socket asyncio binds at `bind` here, or None when it can."""
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((bind, 0))
            if family == socket.AF_INET6 and probe.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
                # Windows' default (measured under Wine too); asyncio's endpoint leaves it as it is.
                return f"an AF_INET6 socket is IPv6-only by default on {portmsg.PLATFORM}: IPv4 never reaches {bind}"
    except OSError as exc:
        return f"this host cannot bind {bind}: {exc}"
    return None


@pytest.mark.parametrize("bind", ["0.0.0.0", "::"])
@pytest.mark.parametrize("ask", ["127.0.0.1", "127.0.0.2", "127.0.0.3"])
def test_aioquic_handshakes_through_portmsgs_endpoint(bind: str, ask: str, tmp_path: Path, crypto_loads: None) -> None:
    if WINE and ask != "127.0.0.1":
        pytest.skip(NO_PINNING)
    why = _why_ipv4_cannot_reach(bind)
    if why:
        pytest.skip(why)
    cert = _certificate(tmp_path)
    reply = asyncio.run(asyncio.wait_for(_quic_round_trip(aio.create_datagram_endpoint, bind, ask, cert), 20))
    assert reply == b"ping"


@pytest.mark.parametrize("ask", ["127.0.0.2", "127.0.0.3"])
def test_aioquic_fails_through_asyncios_own_transport_when_asked_elsewhere(
    ask: str, tmp_path: Path, crypto_loads: None
) -> None:
    """The control: the same server on asyncio's transport answers from 127.0.0.1, and the handshake never completes."""
    if WINE:
        pytest.skip(NO_PINNING)
    import inspect
    from importlib.metadata import version

    from aioquic.quic.connection import QuicConnection

    if "unknown_server_address" not in inspect.getsource(QuicConnection.receive_datagram):
        # aioquic 1.3 (the newest for Python 3.10) takes a packet from any address: nothing to catch out.
        pytest.skip(f"aioquic {version('aioquic')} does not drop packets from an unknown server address (RFC 9000 s9)")
    cert = _certificate(tmp_path)

    async def main() -> bytes:
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(_quic_round_trip(loop.create_datagram_endpoint, "0.0.0.0", ask, cert), 3)

    with pytest.raises((asyncio.TimeoutError, ConnectionError)):
        asyncio.run(main())


# -- dnspython ------------------------------------------------------------------------------


dns = pytest.importorskip("dns", reason="dnspython is a test dependency (pip install -e '.[tests]')")


async def _dns_query(make_endpoint: Any, ask: str) -> str:
    import dns.asyncquery
    import dns.message

    transport, _ = await make_endpoint(DnsResponder, local_addr=("0.0.0.0", 0))
    port = transport.get_extra_info("sockname")[1]
    try:
        response = await dns.asyncquery.udp(dns.message.make_query("example.test.", "A"), ask, port=port, timeout=2)
        return str(response.answer[0][0])
    finally:
        transport.close()


def test_dnspython_gets_its_answer_through_portmsgs_endpoint() -> None:
    """The plain case on every backend: asked at the address the reply comes from anyway."""
    assert asyncio.run(_dns_query(aio.create_datagram_endpoint, "127.0.0.1")) == "192.0.2.1"


def test_dnspython_gets_its_answer_from_the_address_it_asked() -> None:
    if WINE:
        pytest.skip(NO_PINNING)
    assert asyncio.run(_dns_query(aio.create_datagram_endpoint, "127.0.0.2")) == "192.0.2.1"


def test_dnspython_rejects_asyncios_own_transport_asked_elsewhere() -> None:
    if WINE:
        pytest.skip(NO_PINNING)
    import dns.query

    async def main() -> str:
        return await _dns_query(asyncio.get_running_loop().create_datagram_endpoint, "127.0.0.2")

    with pytest.raises(dns.query.UnexpectedSource):
        asyncio.run(main())
