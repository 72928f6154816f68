"""Only the cffi hookup; the metadata is in pyproject.toml."""

import sys

from setuptools import setup

script = "_build_win" if sys.platform == "win32" else "_build_posix"
setup(cffi_modules=[f"portmsg/{script}.py:ffibuilder"])
