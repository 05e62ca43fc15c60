"""The STT fallback adapter: an ``STT`` that asks its providers in order for the final transcript, and moves on
when one fails or has not answered within ``attempt_timeout``."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.providers.attempt import FailedAttempt
from appliance.providers.pool import ProviderPool
from appliance.stt.base import STT, SpeechEvent, STTCapabilities, STTMetrics

logger = logging.getLogger(__name__)

ATTEMPT_TIMEOUT = 1.5
"""Seconds to the final transcript before the next provider is asked."""


async def probe_stt(stt: STT) -> None:
    """Half a second of silence: the provider is back when it answers (any transcript)."""
    await stt.recognize(AudioFrame(np.zeros(SAMPLE_RATE // 2, np.int16), SAMPLE_RATE))


class FallbackSTT(STT):
    label = "fallback"
    capabilities = STTCapabilities(streaming=False, interim_results=False)

    def __init__(
        self,
        engines: Sequence[STT],
        *,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
        max_failures: int = 3,
        cool_down: float = 30.0,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.engines = list(engines)
        self.pool: ProviderPool[STT] = ProviderPool(
            "stt",
            self.engines,
            list(labels) if labels is not None else [e.label for e in self.engines],
            attempt_timeout=attempt_timeout,
            max_failures=max_failures,
            cool_down=cool_down,
            probe=probe_stt,
        )

    async def recognize(self, audio: AudioFrame, *, start_time: float = 0.0) -> SpeechEvent:
        async def ask(stt: STT) -> SpeechEvent:
            return await stt.recognize(audio, start_time=start_time)  # a try given up on is cancelled at its engine

        began = time.perf_counter()
        failed: list[FailedAttempt] = []
        index, event = await self.pool.first_answer(ask, failed)
        lost = sum(a.seconds for a in failed)
        if event.metrics is None:
            metrics = STTMetrics(audio.seconds, time.perf_counter() - began, 0)
        else:
            metrics = dataclasses.replace(event.metrics, duration=event.metrics.duration + lost)
        metrics = dataclasses.replace(metrics, provider=self.pool.labels[index], failed_attempts=tuple(failed))
        return dataclasses.replace(event, metrics=metrics)

    async def aclose(self) -> None:
        """Stop the probes, then close each provider's connections."""
        await self.pool.aclose()
        for engine in self.engines:
            await engine.aclose()

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
