"""The TTS fallback adapter: the real OpenAI voice client against the loopback server first, the scripted
on-device voice (a tone, 60 ms per character at 16 kHz) behind it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from appliance.errors import APIError
from appliance.providers.fallback_tts import FallbackTTS
from appliance.providers.openai import OpenAITTS
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.openai import OpenAIServer
from tests.agent.scripted import ScriptedTTS

TEXT = "The lights in the kitchen are on."
ATTEMPT = 0.3

Check = Callable[[OpenAIServer, FallbackTTS, ScriptedTTS], Awaitable[None]]


def run(fault: Fault | None, check: Check) -> None:
    async def go() -> None:
        server = OpenAIServer(trickle_delay=0.05)
        await server.start()
        cloud = OpenAITTS(base_url=server.url + "/v1", api_key="test-key")
        local = ScriptedTTS()
        local.label = "local"
        tts = FallbackTTS([cloud, local], attempt_timeout=ATTEMPT, cool_down=60.0)
        try:
            if fault is not None:
                server.fail_next(fault)
            await check(server, tts, local)
        finally:
            await tts.aclose()
            await cloud.aclose()
            await server.stop()

    asyncio.run(go())


async def speak(tts: FallbackTTS, pieces: list[str]) -> tuple[float, float, str, int]:
    """(seconds of audio, seconds to the first audio, provider, failed tries); the text is pushed in pieces."""
    stream = tts.stream()
    start = time.perf_counter()
    for piece in pieces:
        stream.push_text(piece)
    stream.end_input()
    first, seconds = -1.0, 0.0
    try:
        async for audio in stream:
            assert audio.frame.sample_rate == tts.sample_rate
            if first < 0:
                first = time.perf_counter() - start
            seconds += audio.frame.seconds
    finally:
        await stream.aclose()
    assert stream.metrics is not None
    return seconds, first, stream.metrics.provider, len(stream.metrics.failed_attempts)


def test_the_first_provider_speaks_when_it_is_healthy() -> None:
    async def check(server: OpenAIServer, tts: FallbackTTS, local: ScriptedTTS) -> None:
        seconds, _, provider, failed = await speak(tts, [TEXT])
        assert (provider, failed, local.spoken) == ("openai", 0, [])
        assert seconds == pytest.approx(server.sent_audio_bytes / 2 / 24000, abs=0.01)

    run(None, check)


@pytest.mark.parametrize("fault", [Fault.STATUS_500, Fault.STATUS_401, Fault.MALFORMED, Fault.HANG_BEFORE_FIRST])
def test_a_voice_that_fails_before_its_first_audio_is_replaced_with_all_the_text(fault: Fault) -> None:
    async def check(server: OpenAIServer, tts: FallbackTTS, local: ScriptedTTS) -> None:
        words = [w + " " for w in TEXT.split()]
        seconds, first, provider, failed = await speak(tts, words)
        assert (provider, failed) == ("local", 1)
        assert " ".join(local.spoken).split() == TEXT.split()  # nothing pushed before the failure is lost
        assert seconds == pytest.approx(0.06 * len(TEXT), rel=0.05)  # the local tone, resampled to 24 kHz
        if fault is Fault.HANG_BEFORE_FIRST:
            assert ATTEMPT <= first < ATTEMPT + 0.5
        assert tts.pool.available(0) is (fault is not Fault.STATUS_401)

    run(fault, check)


def test_a_voice_that_drops_mid_sentence_ends_the_reply_instead_of_starting_over() -> None:
    async def check(server: OpenAIServer, tts: FallbackTTS, local: ScriptedTTS) -> None:
        stream = tts.stream()
        stream.push_text(TEXT)
        stream.end_input()
        try:
            assert (await asyncio.wait_for(anext(stream), 2.0)).frame.samples_per_channel > 0
            with pytest.raises(APIError):
                while True:
                    await asyncio.wait_for(anext(stream), 2.0)
        finally:
            await stream.aclose()
        assert local.spoken == []

    run(Fault.DISCONNECT, check)
