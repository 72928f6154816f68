"""The platform's constants under their C names, read from its headers.

A name the platform lacks is absent (``hasattr(portmsg.native, "UDP_GRO")``),
never guessed.  `CONSTANTS` holds the same as a dict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._backend import IMPL

CONSTANTS: dict[str, int] = {name: value for name, value in IMPL.constants.items() if not name.startswith("PM_")}
globals().update(CONSTANTS)

if TYPE_CHECKING:

    def __getattr__(name: str) -> int: ...
