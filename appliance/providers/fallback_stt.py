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
from appliance.providers.attempt import FailedAttempt
from appliance.providers.pool import ProviderPool
from appliance.stt.base import (
    STT,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    SpeechStream,
    STTCapabilities,
    STTMetrics,
    joined,
    words_so_far,
)
from appliance.utils.aio import Channel, cancel_and_wait

logger = logging.getLogger(__name__)

ATTEMPT_TIMEOUT = 1.5
"""Seconds to the final transcript before the next provider is asked."""


async def probe_stt(stt: STT) -> None:
    """Half a second of silence: the provider is back when it answers (any transcript)."""
    await stt.recognize(AudioFrame(np.zeros(SAMPLE_RATE // 2, np.int16), SAMPLE_RATE))


class FallbackSTT(STT):
    """Streams when its first provider does (``stream()``: live interim transcripts, and the recording handed
    to the next providers if the stream fails); ``recognize()`` asks them in order."""

    label = "fallback"

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
        first = self.engines[0].capabilities
        self.capabilities = STTCapabilities(streaming=first.streaming, interim_results=first.interim_results)

    def stream(self) -> FallbackSpeechStream:
        if not self.capabilities.streaming:
            raise NotImplementedError("the first provider does not stream; use recognize()")
        return FallbackSpeechStream(self)

    async def recognize(
        self,
        audio: AudioFrame,
        *,
        start_time: float = 0.0,
        failed: list[FailedAttempt] | None = None,
        exclude: int | None = None,
    ) -> SpeechEvent:
        """``failed`` and ``exclude``: a try of this request that failed already (a stream), not asked again."""

        async def ask(stt: STT) -> SpeechEvent:
            return await stt.recognize(audio, start_time=start_time)  # a try given up on is cancelled at its engine

        began = time.perf_counter()
        failed = [] if failed is None else failed
        index, event = await self.pool.first_answer(ask, failed, exclude=exclude)
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


class FallbackSpeechStream(SpeechStream):
    """The first provider's stream, live: its interim and final transcripts are handed on as interim ones (the
    words so far), and one FINAL ends the stream, whoever made it. The audio is kept: if the stream fails, or
    has not finished ``attempt_timeout`` after the end of the input, the recording goes to the next providers'
    ``recognize()`` instead."""

    def __init__(self, stt: FallbackSTT) -> None:
        self._stt, self._pool = stt, stt.pool
        self._kept: list[np.ndarray] = []
        self._events: Channel[SpeechEvent] = Channel()
        self._ended = asyncio.Event()
        self._ended_at: float | None = None
        order = self._pool.order()
        streams = bool(order) and stt.engines[order[0]].capabilities.streaming
        self._index: int | None = order[0] if streams else None  # None: a provider in the way is down
        self._inner = stt.engines[order[0]].stream() if streams else None
        self._task = asyncio.create_task(self._run(), name="fallback-stt-stream")

    def push_frame(self, frame: AudioFrame) -> None:
        self._kept.append(frame.data)
        if self._inner is not None:
            self._inner.push_frame(frame)

    def end_input(self) -> None:
        if self._inner is not None:
            self._inner.end_input()
        self._ended_at = time.perf_counter()
        self._ended.set()

    async def __anext__(self) -> SpeechEvent:
        return await anext(self._events)

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        if self._inner is not None:
            await self._inner.aclose()

    async def _run(self) -> None:
        failed: list[FailedAttempt] = []
        try:
            if self._inner is not None and self._index is not None:
                finals = await self._live(self._inner, self._index, failed)
                if finals is not None:
                    self._events.send(self._final(finals, self._index, failed))
                    return
            await self._ended.wait()
            audio = AudioFrame(np.concatenate(self._kept) if self._kept else np.zeros(0, np.int16), SAMPLE_RATE)
            self._events.send(await self._stt.recognize(audio, failed=failed, exclude=self._index))
        except Exception as exc:  # every provider failed: the reader gets the error
            self._events.fail(exc)
        finally:
            self._events.close()

    async def _live(self, inner: SpeechStream, index: int, failed: list[FailedAttempt]) -> list[SpeechData] | None:
        """The provider's finals, or None when it failed (counted against it: what it cost after the input
        ended, the user's wait)."""
        finals: list[SpeechData] = []
        reader = asyncio.create_task(self._read(inner, finals), name="fallback-stt-live")
        ended = asyncio.create_task(self._ended.wait(), name="fallback-stt-ended")
        try:
            await asyncio.wait({reader, ended}, return_when=asyncio.FIRST_COMPLETED)
            await asyncio.wait_for(reader, self._pool.attempt_timeout)
        except (Exception, TimeoutError) as exc:
            lost = time.perf_counter() - self._ended_at if self._ended_at is not None else 0.0
            failed.append(self._pool.failed(index, None if isinstance(exc, TimeoutError) else exc, lost))
            await inner.aclose()
            return None
        finally:
            await cancel_and_wait(reader, ended)
        self._pool.succeeded(index, failed)
        return finals

    async def _read(self, inner: SpeechStream, finals: list[SpeechData]) -> None:
        async for event in inner:
            if not event.alternatives:
                continue
            if event.type is SpeechEventType.FINAL_TRANSCRIPT:
                finals.extend(event.alternatives[:1])
                interim = ""
            elif event.type is SpeechEventType.INTERIM_TRANSCRIPT:
                interim = event.alternatives[0].text
            else:
                continue
            data = dataclasses.replace(event.alternatives[0], text=words_so_far(finals, interim))
            self._events.send(SpeechEvent(SpeechEventType.INTERIM_TRANSCRIPT, event.timestamp, (data,)))

    def _final(self, finals: list[SpeechData], index: int, failed: list[FailedAttempt]) -> SpeechEvent:
        seconds = sum(d.size for d in self._kept) / SAMPLE_RATE
        data = joined(finals, end=seconds)
        took = time.perf_counter() - self._ended_at if self._ended_at is not None else 0.0
        metrics = STTMetrics(seconds, took, 0, provider=self._pool.labels[index], failed_attempts=tuple(failed))
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, seconds, (data,), metrics)
