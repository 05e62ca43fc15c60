"""The STT fallback adapter: an ``STT`` that asks its providers in order for the final transcript, and moves on
when one fails or has not answered within ``attempt_timeout``."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.errors import APIConnectionError
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
    ) -> None:
        self.engines = list(engines)
        self.pool: ProviderPool[STT] = ProviderPool(
            "stt",
            self.engines,
            [e.label for e in self.engines],
            attempt_timeout=attempt_timeout,
            max_failures=max_failures,
            cool_down=cool_down,
            probe=probe_stt,
        )

    async def recognize(self, audio: AudioFrame, *, start_time: float = 0.0) -> SpeechEvent:
        pool = self.pool
        order = pool.order()
        failed: list[FailedAttempt] = []
        for position, index in enumerate(order):
            start = time.perf_counter()
            try:
                event = await asyncio.wait_for(
                    pool.providers[index].recognize(audio, start_time=start_time),  # cancelled at the engine
                    pool.timeout_for(position, len(order)),
                )
            except (Exception, TimeoutError) as exc:
                timed_out = isinstance(exc, TimeoutError)
                failed.append(pool.failed(index, None if timed_out else exc, time.perf_counter() - start))
                continue
            pool.succeeded(index, failed)
            lost = sum(a.seconds for a in failed)
            metrics = event.metrics or STTMetrics(audio.seconds, time.perf_counter() - start, 0)
            metrics = dataclasses.replace(
                metrics, duration=metrics.duration + lost, provider=pool.labels[index], failed_attempts=tuple(failed)
            )
            return dataclasses.replace(event, metrics=metrics)
        tried = ", ".join(f"{a.provider}: {a.outcome}" for a in failed)
        raise APIConnectionError(f"stt: every provider failed ({tried})", retryable=False)

    async def aclose(self) -> None:
        await self.pool.aclose()

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
