"""The platform's constants under their C names, read from its headers.

A name the platform lacks is absent (``hasattr(portmsg.native, "UDP_GRO")``),
never guessed.  `CONSTANTS` holds the same as a dict.
"""

from typing import TYPE_CHECKING

from ._backend import IMPL as _IMPL

CONSTANTS: dict[str, int] = {name: value for name, value in _IMPL.constants.items() if not name.startswith("PM_")}
globals().update(CONSTANTS)
__all__ = ["CONSTANTS", *sorted(CONSTANTS)]  # noqa: PLE0604 - the names are set just above
del _IMPL

if TYPE_CHECKING:

    def __getattr__(name: str) -> int: ...


del TYPE_CHECKING
