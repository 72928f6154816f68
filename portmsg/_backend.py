"""The pick of the compiled backend this platform uses: one CffiBackend over its own module."""

from __future__ import annotations

import importlib.util
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._glue import CffiBackend

__all__ = ["IMPL"]

_MODULE = "portmsg._winsock_cffi" if sys.platform == "win32" else "portmsg._posix_cffi"


def _refuse_stable_abi_on_free_threading() -> None:
    """ImportError for a stable-ABI module on a free-threaded CPython.

    Such a CPython lists .abi3 among its suffixes, but a stable-ABI module is
    built for the GIL's object layout: loading one there (a checkout built by
    another interpreter) is not safe.
    """
    if not sysconfig.get_config_var("Py_GIL_DISABLED"):
        return
    try:
        spec = importlib.util.find_spec(_MODULE)
    except (ImportError, ValueError):
        return
    origin = getattr(spec, "origin", None) or ""
    if ".abi3." in Path(origin).name:
        msg = (
            f"{origin} is a stable-ABI (abi3) build, made for CPythons with the GIL; this free-threaded "
            f"CPython {sys.version.split()[0]} cannot load it safely. Build portmsg for this interpreter: "
            "`python -m pip install --force-reinstall --no-binary portmsg .` from a checkout (or "
            "`pip install -e .` with this python), which makes a version-specific module (free-threaded "
            "builds need cffi 2.0 or newer: CPython 3.14t and later)."
        )
        raise ImportError(msg, name=_MODULE, path=origin)


_refuse_stable_abi_on_free_threading()

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
