"""The loop-level switch: every loop.create_datagram_endpoint() on a loop, whoever calls it, made by portmsg.

For code you do not own (aioquic's serve(), zeroconf, dnspython's and
aioice's backends), which calls `loop.create_datagram_endpoint` itself:

    portmsg.aio.install()                                       # the running loop, from now on
    asyncio.run(main(), loop_factory=portmsg.aio.loop_factory())    # Python 3.12+
    portmsg.aio.run(main())                                     # any Python 3.10+: asyncio.run, switched

as uvloop offers `uvloop.install()` / a loop factory and aiofastnet
`patch_loop()`.  Options (features, reply pinning, sizes) are given once, to
the switch; the calls keep asyncio's signature.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from typing import TYPE_CHECKING, Any, TypeVar

from ._endpoint import create_datagram_endpoint
from ._types import Feature

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterable

__all__ = ["install", "loop_factory", "run", "uninstall"]

_T = TypeVar("_T")
_ORIGINAL = "_portmsg_original_create_datagram_endpoint"


def install(
    loop: asyncio.AbstractEventLoop | None = None,
    *,
    features: Iterable[Feature] = (Feature.PACKET_INFO,),
    reply_from_destination: bool | None = None,
    bufsize: int | None = None,
    ancbufsize: int | None = None,
    depth: int = 4,
    gso: bool = False,
    batch_replies: bool = True,
) -> asyncio.AbstractEventLoop:
    """Make loop.create_datagram_endpoint() return portmsg's transport on `loop` (the running one if None).

    The options are create_datagram_endpoint()'s own, for every endpoint the
    loop makes from now on.  Installing again replaces them.  Works on the
    default loop, uvloop and both Windows loops.  Returns the loop.
    """
    loop = asyncio.get_running_loop() if loop is None else loop
    options = {
        "features": tuple(features),
        "reply_from_destination": reply_from_destination,
        "bufsize": bufsize,
        "ancbufsize": ancbufsize,
        "depth": depth,
        "gso": gso,
        "batch_replies": batch_replies,
    }
    if not hasattr(loop, _ORIGINAL):
        setattr(loop, _ORIGINAL, loop.create_datagram_endpoint)
    loop.create_datagram_endpoint = functools.partial(_switched, options)  # type: ignore[method-assign]
    return loop


def uninstall(loop: asyncio.AbstractEventLoop | None = None) -> None:
    """Give `loop` its own create_datagram_endpoint() back."""
    loop = asyncio.get_running_loop() if loop is None else loop
    original = getattr(loop, _ORIGINAL, None)
    if original is not None:
        del loop.create_datagram_endpoint
        delattr(loop, _ORIGINAL)


def installed(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether install() switched this loop."""
    return hasattr(loop, _ORIGINAL)


async def _switched(
    options: dict[str, Any],
    protocol_factory: Callable[[], Any],
    local_addr: Any = None,
    remote_addr: Any = None,
    *,
    reuse_address: Any = None,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """The endpoint portmsg makes, called with asyncio's create_datagram_endpoint signature."""
    if reuse_address:  # asyncio 3.11+: refused for UDP (a security hazard); 3.10 still honoured it
        msg = (
            "Passing `reuse_address=True` is no longer supported, as the usage of SO_REUSEPORT in UDP "
            "poses a significant security concern."
        )
        raise ValueError(msg)
    return await create_datagram_endpoint(protocol_factory, local_addr, remote_addr, **kwargs, **options)


def loop_factory(
    base: Callable[[], asyncio.AbstractEventLoop] | None = None, **options: Any
) -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory for asyncio.run(..., loop_factory=...) / asyncio.Runner (3.12+): new loops, switched.

    Args:
        base: what makes the loop (asyncio.new_event_loop by default; uvloop.new_event_loop,
            asyncio.SelectorEventLoop, ...).
        **options: install()'s options.

    """
    make = asyncio.new_event_loop if base is None else base

    def factory() -> asyncio.AbstractEventLoop:
        return install(make(), **options)

    return factory


def run(
    main: Coroutine[Any, Any, _T],
    *,
    debug: bool | None = None,
    base: Callable[[], asyncio.AbstractEventLoop] | None = None,
    **options: Any,
) -> _T:
    """asyncio.run(main) on a switched loop, on every Python portmsg supports (loop_factory is 3.12+)."""
    factory = loop_factory(base, **options)
    if sys.version_info >= (3, 12):
        return asyncio.run(main, debug=debug, loop_factory=factory)
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=factory) as runner:
            return runner.run(main)
    loop = factory()  # 3.10: asyncio.run's own steps, on this loop
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(main)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
