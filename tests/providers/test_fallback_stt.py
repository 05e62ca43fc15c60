"""The STT fallback adapter: the real OpenAI transcription client against the loopback server first, the
scripted on-device recogniser behind it."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.providers.fallback_stt import FallbackSTT
from appliance.providers.openai import OpenAISTT
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.openai import OpenAIServer
from tests.agent.scripted import ScriptedSTT

ATTEMPT = 0.3


def utterance() -> AudioFrame:
    """SYNTHETIC: one second of a 220 Hz tone."""
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    return AudioFrame.from_float32(0.3 * np.sin(2 * np.pi * 220 * t), SAMPLE_RATE)


@pytest.mark.parametrize(
    "fault", [None, Fault.STATUS_500, Fault.STATUS_429, Fault.STATUS_401, Fault.MALFORMED, Fault.HANG_BEFORE_FIRST]
)
def test_the_final_transcript_comes_from_the_first_provider_that_answers_in_time(fault: Fault | None) -> None:
    async def go() -> None:
        server = OpenAIServer()
        await server.start()
        cloud = OpenAISTT(base_url=server.url + "/v1", api_key="test-key")
        local = ScriptedSTT()
        local.label = "local"
        stt = FallbackSTT([cloud, local], attempt_timeout=ATTEMPT, cool_down=60.0)
        try:
            if fault is not None:
                server.fail_next(fault)
            start = time.perf_counter()
            event = await stt.recognize(utterance())
            took = time.perf_counter() - start
        finally:
            await stt.aclose()
            await cloud.aclose()
            await server.stop()
        assert event.metrics is not None
        if fault is None:
            assert event.alternatives[0].text == server.transcript
            assert (event.metrics.provider, local.calls) == ("openai", 0)
        else:
            assert (event.metrics.provider, local.calls, len(event.metrics.failed_attempts)) == ("local", 1, 1)
        if fault is Fault.HANG_BEFORE_FIRST:
            assert ATTEMPT <= took < ATTEMPT + 0.5

    asyncio.run(go())
