"""The pick of the compiled backend this platform uses: one CffiBackend over its own module."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._glue import CffiBackend

__all__ = ["IMPL"]

_MODULE = "portmsg._winsock_cffi" if sys.platform == "win32" else "portmsg._posix_cffi"

try:
    if sys.platform == "win32":
        from ._winsock import IMPL as _IMPL
    else:
        from ._posix import IMPL as _IMPL
except ModuleNotFoundError as exc:
    if exc.name != _MODULE:
        raise
    _HERE = Path(__file__).resolve().parent
    _HINT = f"portmsg's compiled module {_MODULE} is missing from {_HERE}. " + (
        "That folder is portmsg's source tree, which shadows an installed portmsg when Python "
        "runs from the checkout: run from another directory, or build in place with "
        "`python -m pip install -e .`."
        if (_HERE.parent / "pyproject.toml").exists()
        else "Reinstall portmsg (`python -m pip install --force-reinstall portmsg`); building "
        "from source needs a C compiler and the Python headers."
    )
    raise ImportError(_HINT, name=_MODULE) from exc

IMPL: CffiBackend = _IMPL
