"""What the provider tests share: the error statuses every provider maps, and a loopback server run around a test."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from appliance.rig.loopback.faults import RETRY_AFTER, Fault
from appliance.rig.loopback.server import LoopbackServer

S = TypeVar("S", bound=LoopbackServer)

STATUS_FAULTS = [
    pytest.param(Fault.STATUS_500, 500, True, None, id="500"),
    pytest.param(Fault.STATUS_429, 429, True, float(RETRY_AFTER), id="429"),
    pytest.param(Fault.STATUS_401, 401, False, None, id="401"),
]
"""(fault, the status it answers, retryable, the Retry-After the client reads)."""


def serve_with(server: S, test: Callable[[S], Awaitable[None]]) -> None:
    """Run ``test`` with ``server`` started, in a fresh event loop."""

    async def go() -> None:
        await server.start()
        try:
            await test(server)
        finally:
            await server.stop()

    asyncio.run(go())
