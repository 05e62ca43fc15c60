"""What the provider tests share: the error statuses every provider maps, a loopback server run around a test, a
port nothing listens on, and a voice's whole answer to a text."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from appliance.rig.loopback.faults import RETRY_AFTER, Fault
from appliance.rig.loopback.server import LoopbackServer
from appliance.tts.base import TTS, SynthesizedAudio

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


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (a connection to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def speech_of(tts: TTS, text: str) -> list[SynthesizedAudio]:
    """All that ``tts`` says for ``text``; its stream is closed however that ends."""
    stream = tts.synthesize(text)
    try:
        return [audio async for audio in stream]
    finally:
        await stream.aclose()
