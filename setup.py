"""Only the cffi hookup and the wheel's shape; the metadata is in pyproject.toml."""

import sys
import sysconfig

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPy(build_py):
    """Leave the build scripts out of the wheel: they run at build time only."""

    def find_package_modules(self, package: str, package_dir: str) -> list[tuple[str, str, str]]:  # noqa: D102
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not m[1].startswith("_build_")]


script = "_build_win" if sys.platform == "win32" else "_build_posix"
setup(
    cffi_modules=[f"portmsg/{script}.py:ffibuilder"],
    cmdclass={"build_py": BuildPy},
    # One wheel per platform for CPython 3.10 and newer: the extension uses the limited API only
    # (free-threaded builds have no limited API: theirs is a wheel per version).
    options={} if sysconfig.get_config_var("Py_GIL_DISABLED") else {"bdist_wheel": {"py_limited_api": "cp310"}},
)
