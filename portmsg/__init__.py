"""portmsg: receive and send datagrams with their ancillary data, on every platform.

Level 1 mirrors the stdlib's socket methods with native numbers
(`recvmsg`, `recvmsg_into`, `sendmsg`, `CMSG_LEN`, `CMSG_SPACE`,
`portmsg.native`); Level 2 gives the same typed values on every OS
(`recv`, `send`, `enable`, `normalize`, `encode`, `Message` and the control
types).
"""

from . import native as native
from ._api import BACKEND as BACKEND
from ._api import CMSG_LEN as CMSG_LEN
from ._api import CMSG_SPACE as CMSG_SPACE
from ._api import PLATFORM as PLATFORM
from ._api import Receiver as Receiver
from ._api import disable_udp_resets as disable_udp_resets
from ._api import dropped as dropped
from ._api import encode as encode
from ._api import normalize as normalize
from ._api import recv as recv
from ._api import recv_batch as recv_batch
from ._api import recv_error as recv_error
from ._api import recv_into as recv_into
from ._api import recvmsg as recvmsg
from ._api import recvmsg_into as recvmsg_into
from ._api import send as send
from ._api import send_batch as send_batch
from ._api import sendmsg as sendmsg
from ._enable import enable as enable
from ._types import ECN as ECN
from ._types import Clock as Clock
from ._types import Control as Control
from ._types import Credentials as Credentials
from ._types import Drops as Drops
from ._types import Enabled as Enabled
from ._types import ErrorOrigin as ErrorOrigin
from ._types import Feature as Feature
from ._types import FileDescriptors as FileDescriptors
from ._types import HopLimit as HopLimit
from ._types import Message as Message
from ._types import MsgFlag as MsgFlag
from ._types import OriginalDestination as OriginalDestination
from ._types import PacketInfo as PacketInfo
from ._types import QueuedError as QueuedError
from ._types import RawControl as RawControl
from ._types import SegmentSize as SegmentSize
from ._types import Timestamp as Timestamp
from ._types import TrafficClass as TrafficClass

__all__ = [
    "BACKEND",
    "CMSG_LEN",
    "CMSG_SPACE",
    "ECN",
    "PLATFORM",
    "Clock",
    "Control",
    "Credentials",
    "Drops",
    "Enabled",
    "ErrorOrigin",
    "Feature",
    "FileDescriptors",
    "HopLimit",
    "Message",
    "MsgFlag",
    "OriginalDestination",
    "PacketInfo",
    "QueuedError",
    "RawControl",
    "Receiver",
    "SegmentSize",
    "Timestamp",
    "TrafficClass",
    "disable_udp_resets",
    "dropped",
    "enable",
    "encode",
    "native",
    "normalize",
    "recv",
    "recv_batch",
    "recv_error",
    "recv_into",
    "recvmsg",
    "recvmsg_into",
    "send",
    "send_batch",
    "sendmsg",
]
__version__ = "0.1.0"
