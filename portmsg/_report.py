"""The compiled module's report layout (_csrc/portmsg.h), written down once.

A receive reports, per datagram, a head of HEADER values and RECORD values
per control message; the glue reads heads, the normalizer reads records.
`check()` refuses a compiled module built from other sources.  Nothing here
imports a compiled module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ABI",
    "FRESH",
    "HEADER",
    "INDEX_CONTROLS",
    "INDEX_CONTROL_SHIFT",
    "INDEX_COUNT",
    "INDEX_FRESH",
    "INDEX_MIXED",
    "INDEX_PEERS",
    "INDEX_PEER_SHIFT",
    "INDEX_SAME_FORMAT",
    "RECORD",
    "SAME_CONTROL",
    "SAME_FLAGS",
    "SAME_NAME",
    "NativeControl",
    "check",
    "items",
    "records_room",
]

ABI = 7  # PM_ABI_VERSION
HEADER = 6  # PM_HEADER: nbytes, flags, namelen, controllen, nrecords, same
RECORD = 4  # PM_RECORD: level, type, offset, length
SAME_NAME = 1  # PM_SAME_NAME: the sender equals the previous datagram's
SAME_CONTROL = 2  # PM_SAME_CONTROL: the control bytes equal the previous datagram's
SAME_FLAGS = 4  # PM_SAME_FLAGS: and its msg_flags
FRESH = -(1 << 30)  # PM_FRESH: pm_recv1's "read the head" (its other results: nbytes of a repeat, -errno)
INDEX_COUNT = 0x7FF  # PM_INDEX_COUNT: pm_recv_indexed's datagram count, in the low bits of its result
INDEX_MIXED = 1 << 11  # PM_INDEX_MIXED: the index tables could not hold the call (decode by the heads)
INDEX_PEERS = 1 << 12  # PM_INDEX_PEERS: more than one sender in the call
INDEX_CONTROLS = 1 << 13  # PM_INDEX_CONTROLS: more than one control set (or msg_flags) in the call
INDEX_SAME_FORMAT = 1 << 14  # PM_INDEX_SAME_FORMAT: the payload format of the call before
INDEX_FRESH = 1 << 15  # PM_INDEX_FRESH: the call filled slots (nfresh > 0)
INDEX_PEER_SHIFT = 16  # PM_INDEX_PEER_SHIFT: the last datagram's peer slot, 8 bits
INDEX_CONTROL_SHIFT = 24  # PM_INDEX_CONTROL_SHIFT: and its control slot, 6 bits

NativeControl = tuple[int, int, bytes]
"""One control message as the stdlib's recvmsg gives it: (level, type, data)."""


def check(constants: Mapping[str, int]) -> None:
    """Raise ImportError unless the compiled module reports in this layout."""
    expected = {
        "PM_ABI_VERSION": ABI,
        "PM_HEADER": HEADER,
        "PM_RECORD": RECORD,
        "PM_SAME_NAME": SAME_NAME,
        "PM_SAME_CONTROL": SAME_CONTROL,
        "PM_SAME_FLAGS": SAME_FLAGS,
        "PM_FRESH": FRESH,
        "PM_INDEX_COUNT": INDEX_COUNT,
        "PM_INDEX_MIXED": INDEX_MIXED,
        "PM_INDEX_PEERS": INDEX_PEERS,
        "PM_INDEX_CONTROLS": INDEX_CONTROLS,
        "PM_INDEX_SAME_FORMAT": INDEX_SAME_FORMAT,
        "PM_INDEX_FRESH": INDEX_FRESH,
        "PM_INDEX_PEER_SHIFT": INDEX_PEER_SHIFT,
        "PM_INDEX_CONTROL_SHIFT": INDEX_CONTROL_SHIFT,
    }
    found = {name: constants.get(name) for name in expected}
    if found != expected:
        msg = (
            f"portmsg's compiled module reports {found}, its Python code expects {expected}: "
            "it was built from other sources; reinstall portmsg"
        )
        raise ImportError(msg)


def records_room(ancbufsize: int, cmsg_header: int) -> int:
    """The most records one control buffer can yield: every message takes CMSG_LEN(0) or more."""
    return ancbufsize // cmsg_header + 1


def items(control: bytes, records: Any, base: int, count: int) -> list[NativeControl]:
    """The (level, type, data) items of one datagram's records."""
    return [
        (records[i], records[i + 1], control[records[i + 2] : records[i + 2] + records[i + 3]])
        for i in range(base, base + RECORD * count, RECORD)
    ]
