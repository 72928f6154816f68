"""Fixtures shared by every test module (helpers live in helpers.py)."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest
from helpers import FAMILIES, Pair, udp_pair

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(params=FAMILIES, ids=lambda f: socket.AddressFamily(f).name)
def family(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def pair(family: int) -> Iterator[Pair]:
    with udp_pair(family) as p:
        yield p
