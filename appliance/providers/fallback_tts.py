"""The TTS fallback adapter: a ``TTS`` whose stream speaks through the first provider that gives audio within
``attempt_timeout`` of the first text. The text pushed so far is kept, so the next provider starts from the
beginning; once audio has been handed on, the reply stays with its provider."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import itertools
import logging
import time
from collections.abc import Sequence

from appliance.audio.resample import Resampler
from appliance.providers.attempt import FailedAttempt
from appliance.providers.pool import ProviderPool
from appliance.tts.base import TTS, SynthesizedAudio, SynthesizeStream, TTSCapabilities, TTSMetrics
from appliance.utils.aio import Channel, cancel_and_wait

logger = logging.getLogger(__name__)

ATTEMPT_TIMEOUT = 1.0
"""Seconds from the first text to the first audio before the next provider is asked."""


async def probe_tts(tts: TTS) -> None:
    stream = tts.synthesize("OK.")
    try:
        await anext(stream)
    finally:
        await stream.aclose()


class _Op(enum.Enum):
    TEXT = "text"
    FLUSH = "flush"
    END = "end"


class FallbackTTS(TTS):
    """Speaks at the first provider's rate; another provider's audio is resampled to it."""

    label = "fallback"

    def __init__(
        self,
        voices: Sequence[TTS],
        *,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
        max_failures: int = 3,
        cool_down: float = 30.0,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.voices = list(voices)
        self.pool: ProviderPool[TTS] = ProviderPool(
            "tts",
            self.voices,
            list(labels) if labels is not None else [v.label for v in self.voices],
            attempt_timeout=attempt_timeout,
            max_failures=max_failures,
            cool_down=cool_down,
            probe=probe_tts,
        )
        self.capabilities = TTSCapabilities(streaming=False, sample_rate=self.voices[0].sample_rate)
        self._ids = itertools.count(1)

    def stream(self) -> FallbackSynthesizeStream:
        return FallbackSynthesizeStream(self.pool, self.sample_rate, f"fallback_tts_{next(self._ids)}")

    def offline(self) -> TTS:
        local = [v for v, label in zip(self.voices, self.pool.labels, strict=True) if label == "local"]
        return local[0] if local else self

    async def aclose(self) -> None:
        """Stop the probes, then close each provider's connections."""
        await self.pool.aclose()
        for engine in self.voices:
            await engine.aclose()

    def close(self) -> None:
        for voice in self.voices:
            voice.close()


class FallbackSynthesizeStream(SynthesizeStream):
    def __init__(self, pool: ProviderPool[TTS], sample_rate: int, request_id: str) -> None:
        self._pool, self._rate, self.request_id = pool, sample_rate, request_id
        self.metrics: TTSMetrics | None = None
        self.provider: str | None = None
        self.failed_attempts: list[FailedAttempt] = []
        self._ops: list[tuple[_Op, str]] = []
        self._inner: SynthesizeStream | None = None
        self._has_text = asyncio.Event()
        self._cancelled = False
        self._last_metrics: TTSMetrics | None = None
        """The serving voice's metrics, once its stream has closed."""
        self._started = time.perf_counter()
        self._out: Channel[SynthesizedAudio] = Channel()
        self._task = asyncio.create_task(self._run(), name=f"{request_id}-fallback")

    def _apply(self, stream: SynthesizeStream, op: _Op, text: str) -> None:
        if op is _Op.TEXT:
            stream.push_text(text)
        elif op is _Op.FLUSH:
            stream.flush()
        else:
            stream.end_input()

    def _do(self, op: _Op, text: str = "") -> None:
        self._ops.append((op, text))
        if op is not _Op.TEXT or text.strip():
            self._has_text.set()
        if self._inner is not None:
            self._apply(self._inner, op, text)

    def push_text(self, text: str) -> None:
        self._do(_Op.TEXT, text)

    def flush(self) -> None:
        self._do(_Op.FLUSH)

    def end_input(self) -> None:
        self._do(_Op.END)

    async def __anext__(self) -> SynthesizedAudio:
        return await self._out.__anext__()

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        try:
            await self._serve()
        except asyncio.CancelledError:
            self._cancelled = True
            raise
        except Exception as exc:
            self._out.fail(exc)
        finally:
            self._finish()
            self._out.close()

    async def _open(self, voice: TTS) -> tuple[SynthesizeStream, SynthesizedAudio | None]:
        """One try: a stream fed all the text so far (and what comes later), and its first audio."""
        stream = voice.stream()
        for op, text in self._ops:
            self._apply(stream, op, text)
        self._inner = stream
        try:
            return stream, await anext(stream, None)
        except BaseException:
            self._inner = None
            await stream.aclose()
            raise

    async def _serve(self) -> None:
        pool = self._pool
        await self._has_text.wait()  # the attempt timeout counts from the first text, not from the request
        index, (stream, first) = await pool.first_answer(self._open, self.failed_attempts)
        voice, self.provider = pool.providers[index], pool.labels[index]
        resampler = Resampler(voice.sample_rate, self._rate) if voice.sample_rate != self._rate else None
        start = time.perf_counter()
        try:
            audio = first
            while audio is not None:
                if resampler is not None:
                    audio = SynthesizedAudio(resampler.push(audio.frame), audio.text)
                self._out.send(audio)
                audio = await anext(stream, None)
        except Exception as exc:
            pool.failed(index, exc, time.perf_counter() - start)
            raise  # part of it was handed on: no fallback within this reply
        finally:
            await stream.aclose()
            self._last_metrics = stream.metrics

    def _finish(self) -> None:
        attempts = tuple(self.failed_attempts)
        inner = self._last_metrics
        if inner is None:
            inner = TTSMetrics(self.request_id, -1.0, time.perf_counter() - self._started, 0.0, 0, self._cancelled)
        elif inner.ttfb >= 0:
            inner = dataclasses.replace(inner, ttfb=inner.ttfb + sum(a.seconds for a in attempts))
        self.metrics = dataclasses.replace(inner, provider=self.provider or "", failed_attempts=attempts)
