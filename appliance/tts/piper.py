"""Piper voices (ONNX) through ``piper-tts``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from piper import PiperVoice, SynthesisConfig

from appliance.audio.frame import AudioFrame
from appliance.errors import ConfigError, ModelError, ProviderError
from appliance.tts.base import SynthesizedAudio, TTSMetrics
from appliance.tts.sentences import SentenceStream
from appliance.utils.aio import Channel, cancel_and_wait

logger = logging.getLogger(__name__)
_ids = itertools.count(1)


@dataclass(frozen=True)
class PiperSettings:
    """Voice tuning."""

    length_scale: float = 1.0
    """Speaking rate: below 1 is faster."""
    volume: float = 0.9
    """Gain applied after peak normalisation."""
    timeout: float = 15.0
    """Seconds one sentence may take to synthesize."""
    noise_scale: float | None = None
    """Variation of the voice (None: the voice's own); 0 with ``noise_w`` 0 makes synthesis repeatable."""
    noise_w: float | None = None
    """Variation of the phoneme lengths (None: the voice's own)."""

    def __post_init__(self) -> None:
        if not 0.5 <= self.length_scale <= 2.0:
            raise ConfigError(f"tts.length_scale = {self.length_scale} is out of range; use 0.5 to 2.0")
        if not 0.0 < self.volume <= 1.0:
            raise ConfigError(f"tts.volume = {self.volume} is out of range; use more than 0 and at most 1")


class PiperTTS:
    """Synthesizes on its own worker thread, sentence by sentence."""

    def __init__(
        self, model_path: Path, config_path: Path | None = None, settings: PiperSettings | None = None
    ) -> None:
        self.settings = settings or PiperSettings()
        config_path = config_path or model_path.with_name(model_path.name + ".json")
        if not config_path.is_file():
            raise ModelError(
                f"Piper voice config {config_path} is missing; run `appliance-cli models fetch --role tts`"
            )
        self._voice = PiperVoice.load(model_path, config_path=config_path)
        self._syn = SynthesisConfig(
            length_scale=self.settings.length_scale,
            volume=self.settings.volume,
            noise_scale=self.settings.noise_scale,
            noise_w_scale=self.settings.noise_w,
        )
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts")

    @property
    def sample_rate(self) -> int:
        return int(self._voice.config.sample_rate)

    def synthesize_sync(self, text: str) -> AudioFrame:
        """All of ``text`` as one frame (blocking)."""
        chunks = [c.audio_int16_array for c in self._voice.synthesize(text, self._syn)]
        data = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return AudioFrame(data.astype(np.int16, copy=False), self.sample_rate)

    async def _synthesize_segment(self, text: str) -> AudioFrame:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self.synthesize_sync, text)
        try:
            return await asyncio.wait_for(future, self.settings.timeout)
        except TimeoutError as exc:
            raise ProviderError(f"speech synthesis took over {self.settings.timeout} s", retryable=True) from exc

    def synthesize(self, text: str) -> SynthesizeStream:
        """Speak ``text`` (any length): audio sentence by sentence."""
        stream = self.stream()
        stream.push_text(text)
        stream.end_input()
        return stream

    def stream(self) -> SynthesizeStream:
        """A stream fed with text pieces (LLM tokens); sentences are spoken as soon as complete."""
        return SynthesizeStream(self)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


class SynthesizeStream:
    """push_text / flush / end_input in, ``SynthesizedAudio`` out; ``aclose()`` cancels."""

    def __init__(self, tts: PiperTTS) -> None:
        self._tts = tts
        self.request_id = f"tts_{next(_ids)}"
        self._sentences = SentenceStream()
        self._segments: asyncio.Queue[str | None] = asyncio.Queue()
        self._output: Channel[SynthesizedAudio] = Channel()
        self._first_text_at: float | None = None
        self._first_audio_at: float | None = None
        self._busy = 0.0
        self._audio_seconds = 0.0
        self._chars = 0
        self._cancelled = False
        self._ended = False
        self.metrics: TTSMetrics | None = None
        self._task = asyncio.create_task(self._run(), name=f"{self.request_id}-synth")

    def push_text(self, text: str) -> None:
        if self._ended:
            raise RuntimeError("SynthesizeStream: input already ended")
        if self._first_text_at is None and text.strip():
            self._first_text_at = time.perf_counter()
        for sentence in self._sentences.push(text):
            self._segments.put_nowait(sentence)

    def flush(self) -> None:
        """Speak what is buffered now, even if the sentence is not finished."""
        for sentence in self._sentences.flush():
            self._segments.put_nowait(sentence)

    def end_input(self) -> None:
        self.flush()
        self._ended = True
        self._segments.put_nowait(None)

    async def _run(self) -> None:
        try:
            n = 0
            while (text := await self._segments.get()) is not None:
                n += 1
                start = time.perf_counter()
                frame = await self._tts._synthesize_segment(text)
                self._busy += time.perf_counter() - start
                if self._first_audio_at is None:
                    self._first_audio_at = time.perf_counter()
                self._audio_seconds += frame.seconds
                self._chars += len(text)
                self._output.send(SynthesizedAudio(frame, f"{self.request_id}_{n}", text))
        except asyncio.CancelledError:
            self._cancelled = True
            raise
        except Exception as exc:
            self._output.fail(exc)
        finally:
            self._finish_metrics()
            self._output.close()

    def _finish_metrics(self) -> None:
        ttfb = -1.0
        if self._first_audio_at is not None and self._first_text_at is not None:
            ttfb = self._first_audio_at - self._first_text_at
        self.metrics = TTSMetrics(self.request_id, ttfb, self._busy, self._audio_seconds, self._chars, self._cancelled)

    def __aiter__(self) -> AsyncIterator[SynthesizedAudio]:
        return self

    async def __anext__(self) -> SynthesizedAudio:
        return await self._output.__anext__()

    async def aclose(self) -> None:
        """Stop: queued sentences are dropped; a sentence being synthesized is discarded."""
        self._cancelled = True
        await cancel_and_wait(self._task)
