"""Reply pinning: where each peer's latest datagram went, and that source encoded once for the send path.

A multi-homed server bound to a wildcard address must answer from the
address a peer asked, or the peer drops the answer (DNS, QUIC).  A transport
notes each datagram's destination just before its protocol hears of it, so a
sendto() inside the callback answers from where that datagram went, and a
later one from where that peer's latest datagram went.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _io
from ._types import reply_controls

if TYPE_CHECKING:
    import socket

    from ._types import Control, Message, MsgFlag

__all__ = ["ReplySources"]

PEERS = 2048
"""Peers remembered: the 2,048 most recently seen at least, up to twice as many (two generations
of this size; the older one is dropped when the newer fills)."""
_OUTGOING = 4096  # encoded sources kept


class ReplySources:
    """The latest destination of each peer's datagrams, and the encoded source to answer it from.

    Not thread-safe: used from its transport's loop only.
    """

    __slots__ = ("_newer", "_older", "_outgoing", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._newer: dict[Any, tuple[tuple[Control, ...], MsgFlag]] = {}
        self._older: dict[Any, tuple[tuple[Control, ...], MsgFlag]] = {}
        self._outgoing: dict[tuple[Any, int, int], tuple[Any, _io.Outgoing | None, tuple[Control, ...]]] = {}

    def note(self, message: Message) -> None:
        """Remember where this peer's datagram went (one dict store: this runs per datagram)."""
        newer = self._newer
        newer[message[1]] = (message[3], message[2])
        if len(newer) > PEERS:
            self._older, self._newer = newer, {}

    def source_for(self, addr: Any) -> tuple[_io.Outgoing | None, tuple[Control, ...]]:
        """(the encoded destination and source to answer addr with, its controls); (None, ()) if unknown.

        Raises OSError(EOPNOTSUPP) where the platform cannot send controls.
        """
        source = self._newer.get(addr) or self._older.get(addr)
        if source is None:
            return None, ()
        controls, flags = source
        key = (addr, id(controls), int(flags))
        known = self._outgoing.get(key)
        if known is not None and known[0] is controls:
            return known[1], known[2]
        reply = tuple(reply_controls(controls, flags))
        out = _io.prepare(self._sock, addr, reply) if reply else None
        if len(self._outgoing) >= _OUTGOING:
            self._outgoing.clear()
        self._outgoing[key] = (controls, out, reply)  # holding controls keeps its id from being reused
        return out, reply
