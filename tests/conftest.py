"""Fixtures shared by every test module (helpers live in helpers.py)."""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import TYPE_CHECKING, Any

import pytest
from helpers import FAMILIES, Pair, udp_pair

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator


@pytest.fixture(params=FAMILIES, ids=lambda f: socket.AddressFamily(f).name)
def family(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def pair(family: int) -> Iterator[Pair]:
    with udp_pair(family) as p:
        yield p


# -- asyncio: every loop this platform has ------------------------------------------------

LOOPS = ["default"]
if sys.platform == "win32":
    LOOPS.append("selector")
else:
    try:
        import uvloop  # noqa: F401

        LOOPS.append("uvloop")
    except ImportError:
        pass


def _new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "selector":
        return asyncio.SelectorEventLoop()
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()  # type: ignore[no-any-return]
    return asyncio.new_event_loop()


@pytest.fixture(params=LOOPS)
def run(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """run(coroutine_function, *args): on a fresh loop of this kind, in debug mode, recording loop errors."""
    recorded: list[dict[str, Any]] = []

    def runner(function: Callable[..., Coroutine[Any, Any, Any]], *args: Any) -> Any:
        loop = _new_loop(request.param)
        loop.set_debug(True)
        loop.slow_callback_duration = 10.0  # a slow CI machine is not an error
        loop.set_exception_handler(lambda _loop, context: recorded.append(context))
        try:
            return loop.run_until_complete(function(*args))
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    yield runner
    assert not recorded, recorded
