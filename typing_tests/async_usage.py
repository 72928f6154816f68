"""asyncio and trio as a user writes them: mypy --strict keeps the user's protocol class and the results' types."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from portmsg import Enabled, Feature, Message, aio
from portmsg import socket as psocket
from portmsg import trio as ptrio

if TYPE_CHECKING:
    import socket


class Counter(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.count = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.count += 1


async def endpoint() -> int:
    transport, protocol = await aio.create_datagram_endpoint(Counter, local_addr=("0.0.0.0", 5300))
    enabled: Enabled = transport.get_extra_info("portmsg.enabled")
    assert Feature.PACKET_INFO in enabled
    transport.sendmsg(b"x", ("127.0.0.1", 9), controls=[])
    transport.close()
    return protocol.count  # the factory's own class: no cast needed


async def receive(sock: socket.socket) -> list[Message]:
    one: Message = await aio.recv(sock)
    async with aio.open_receiver(sock, bufsize=65535) as receiver:
        batch: list[Message] = await receiver.recv_many(8)
        async for message in receiver:
            batch.append(message)
            break
    sent: int = await aio.send(sock, b"answer", one.address, controls=one.reply_controls())
    assert sent >= 0
    return batch


def switched() -> asyncio.AbstractEventLoop:
    factory = aio.loop_factory(features=(Feature.PACKET_INFO,))
    loop: asyncio.AbstractEventLoop = factory()
    aio.uninstall(loop)
    return aio.install(loop)


async def with_trio(sock: socket.socket) -> Message:
    batch: list[Message] = await ptrio.recv_batch(sock, 16, ancbufsize=512)
    await ptrio.send(sock, b"x", batch[0].address)
    return await ptrio.recv(sock)


def stdlib_shaped() -> tuple[bytes, list[Any], int, Any]:
    sock = psocket.PortableSocket(psocket.AF_INET, psocket.SOCK_DGRAM)
    return sock.recvmsg(1500, psocket.CMSG_SPACE(64))
