"""User-style calls that mypy --strict must accept (the exact types a user sees)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import portmsg
from portmsg import ECN, Feature, Message, MsgFlag, PacketInfo, TrafficClass

if TYPE_CHECKING:
    import socket
    from ipaddress import IPv4Address, IPv6Address


def receive(sock: socket.socket) -> tuple[IPv4Address | IPv6Address | None, ECN | None]:
    on: frozenset[Feature] = portmsg.enable(sock, Feature.PACKET_INFO, Feature.TRAFFIC_CLASS)
    assert Feature.PACKET_INFO in on
    message: Message = portmsg.recv(sock, 2048, peek=False)
    info: PacketInfo | None = message.packet_info
    flags: MsgFlag = message.flags
    assert not flags & MsgFlag.TRUNC
    return (info.address if info else None), message.ecn


def level1(sock: socket.socket) -> int:
    data, ancdata, flags, address = portmsg.recvmsg(sock, 1500, portmsg.CMSG_SPACE(20))
    for level, kind, payload in ancdata:
        assert isinstance(level, int) and isinstance(kind, int) and isinstance(payload, bytes)
    nbytes, _, _, _ = portmsg.recvmsg_into(sock, [bytearray(10)])
    sent: int = portmsg.sendmsg(sock, [data], ancdata, 0, address)
    return nbytes + flags + sent + portmsg.native.IPPROTO_IP


def reply(sock: socket.socket, message: Message) -> int:
    controls: list[portmsg.Control] = [TrafficClass(ECN.ECT0)]
    if message.packet_info:
        controls.append(PacketInfo(message.packet_info.address, 0))
    return portmsg.send(sock, b"answer", message.address, controls=controls)


def fast_path(sock: socket.socket, buffer: bytearray) -> int:
    messages: list[Message] = portmsg.recv_batch(sock, 32, 2048)
    nbytes, meta = portmsg.recv_into(sock, buffer)
    sent: int = portmsg.send_batch(sock, [(m.data, m.address, m.reply_controls()) for m in messages])
    sizes = [len(segment) for m in messages for segment in m.segments()]
    receiver = portmsg.Receiver(sock, bufsize=2048, batch=16)
    one: Message = receiver.recv()
    more: list[Message] = receiver.recv_batch()
    return nbytes + sent + sum(sizes) + len(meta.controls) + len(one.data) + len(more)


def kernel_reports(sock: socket.socket) -> int:
    on = portmsg.enable(sock, Feature.ERRORS, Feature.DROPS, Feature.ORIGINAL_DESTINATION)
    missing: frozenset[Feature] = on.missing(portmsg.recv(sock))
    queued: Message | None = portmsg.recv_error(sock)
    error: portmsg.QueuedError | None = queued.error if queued else None
    origin: portmsg.ErrorOrigin | int = error.origin if error else portmsg.ErrorOrigin.NONE
    drops: portmsg.Drops | None = portmsg.recv(sock).drops
    where: portmsg.OriginalDestination | None = portmsg.recv(sock).original_destination
    return len(missing) + int(origin) + (drops.count if drops else 0) + (where.port if where else 0)
