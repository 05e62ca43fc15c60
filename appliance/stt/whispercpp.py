"""Whisper through whisper.cpp (pywhispercpp), with the encoder sized to the utterance."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.errors import AudioError, ConfigError, ModelError
from appliance.stt.base import STT, SpeechData, SpeechEvent, SpeechEventType, STTCapabilities, STTMetrics
from appliance.utils.worker import Job, JobCancelled, Worker

if TYPE_CHECKING:
    from pywhispercpp.model import Model

logger = logging.getLogger(__name__)

MAX_LANES = 2
"""Model copies at most: one, plus a spare for while an abandoned job still encodes."""
WEDGED_AFTER = 2.0
"""Seconds an abandoned recognition may keep its model after the cancel before later jobs go elsewhere."""
FULL_AUDIO_CTX = 1500
"""Encoder positions of Whisper's 30 s window (50 per second)."""
CTX_STEP = 256
"""whisper.cpp pads the encoder's output to a multiple of this many positions, and the padding keeps what the
last longer run wrote there: an ``audio_ctx`` that is not a multiple of it makes a transcript depend on the
utterance before (measured: "capital of France" read as "capital of friends" after a 5 s utterance)."""
KNOWN_CLIP = Path(__file__).parents[1] / "data" / "demo_hey_jarvis.wav"
"""Synthetic speech shipped with the package: "Hey Jarvis. What is the capital of France?"."""
KNOWN_WORDS = frozenset({"capital", "france"})
"""Words any working English model finds in ``KNOWN_CLIP``."""


@dataclass(frozen=True)
class WhisperSettings:
    """How whisper.cpp runs."""

    language: str = "en"
    threads: int = 0
    """Worker threads; 0 takes the number of CPU cores (at most 4)."""
    trim_audio_ctx: bool = True
    """Encode only as many positions as the utterance needs instead of the padded 30 s window."""
    audio_ctx_margin: int = 256
    """Extra encoder positions beyond the utterance (5.1 s), before rounding up to :data:`CTX_STEP`: a tighter
    fit loses words. On the LibriVox clips (71 words) the full window misses 3 words and this 5 (it also reads
    "ill disposed" as "old asposed" once)."""
    timeout: float = 20.0
    """Seconds a recognition may take before it is abandoned."""

    def __post_init__(self) -> None:
        if not 0 <= self.threads <= 64:
            raise ConfigError(f"stt.threads = {self.threads} is out of range; use 0 (automatic) to 64")
        if not 0 <= self.audio_ctx_margin <= FULL_AUDIO_CTX:
            margin = self.audio_ctx_margin
            raise ConfigError(f"stt.audio_ctx_margin = {margin} is out of range; use 0 to {FULL_AUDIO_CTX}")
        if self.timeout <= 0:
            raise ConfigError(f"stt.timeout = {self.timeout} must be more than 0 seconds")


class _Lane:
    """A model and the thread that runs it."""

    def __init__(self, model: Model | None, worker: Worker) -> None:
        self.model = model
        self.worker = worker


LOOP_PASSES = 3
"""A word or two said this many times over in a row is a decoding loop, not speech ("no, no" is kept); a
longer phrase, twice in a row."""


def without_loop(text: str) -> str:
    """Whisper's repetition loop taken back to one pass: "ten of clubs ten of clubs ten of clubs ten of" is
    "ten of clubs", and a loop after other words keeps them ("what is it like in? Paris today? Paris today?
    Paris today?" ends at the first "Paris today?"). The last pass may be cut short, mid-word, by the token
    bound. Text that does not end in such repeats is kept as it is."""
    words = text.split()
    key = [w.strip(".,!?;:").lower() for w in words]
    n = len(words)
    for start in range(n):
        for unit in range(1, (n - start) // 2 + 1):
            if n - start < unit * (LOOP_PASSES if unit <= 2 else 2):
                continue
            repeats = all(key[start + i] == key[start + i % unit] for i in range(n - start - 1))
            last = key[-1]
            if repeats and last and key[start + (n - start - 1) % unit].startswith(last):
                return " ".join(words[: start + unit])
    return text


def is_garbage(text: str) -> bool:
    """What whisper.cpp writes with broken weights: a run of token 0 ("!!!!"), no word in it."""
    return len(text) >= 4 and set(text) <= {"!", " "}


class WhisperCppSTT(STT):
    """Recognises utterances one at a time on its own worker thread.

    A cancelled recognition stops where whisper.cpp checks its abort callback: after the encoder pass it is
    in, and between decoding steps. A job behind it waits for that much at most. Should an abandoned job
    still run ``WEDGED_AFTER`` seconds after it was given up (a wedged engine), later jobs run on a second
    copy of the model (loaded when first needed, on its own thread) instead of queueing behind it; sooner
    than that, two copies would only share the same cores and both be slow.
    """

    capabilities = STTCapabilities(streaming=False, interim_results=False, sample_rate=SAMPLE_RATE)
    label = "whisper.cpp"

    def __init__(self, model_path: Path, settings: WhisperSettings | None = None) -> None:
        self.settings = settings or WhisperSettings()
        self.model_path = model_path
        self._lanes = [_Lane(self._load(), Worker("stt"))]

    def _load(self) -> Model:
        from pywhispercpp.model import Model

        threads = self.settings.threads or min(4, os.cpu_count() or 1)
        try:
            return Model(
                str(self.model_path),
                n_threads=threads,
                redirect_whispercpp_logs_to=None,
                print_progress=False,
                print_realtime=False,
                print_timestamps=False,
            )
        except (RuntimeError, ValueError) as exc:
            raise ModelError(
                f"whisper.cpp could not load {self.model_path} ({exc}); run `appliance-cli models verify`"
            ) from exc

    def check_output(self) -> str | None:
        """What is wrong with this model's transcript of a known clip; None if a working model could have
        written it. Broken weights write a run of "!" or stray marks, and every turn would fail the same way."""
        from appliance.audio.wav import read_audio  # here: reading the config loads no native library (soundfile)

        try:
            # broken weights give tokens of probability 0: numpy's warning about their log would be a second,
            # less useful line before the error
            with np.errstate(divide="ignore", invalid="ignore"):
                text = self.recognize_sync(read_audio(KNOWN_CLIP))[0].text
        except ModelError:  # the run of "!" (``is_garbage``)
            return "it transcribed a known clip as a run of '!'"
        except (RuntimeError, ValueError) as exc:
            return f"it failed on a known clip ({exc})"
        words = {w.strip(".,!?;:'\"").lower() for w in text.split()}
        if not any(c.isalpha() for c in text) or (self.settings.language == "en" and not words & KNOWN_WORDS):
            return f'it transcribed a known clip ("...the capital of France?") as {text[:40]!r}'
        return None

    def _lane(self) -> _Lane:
        for lane in self._lanes:
            if not lane.worker.stuck(WEDGED_AFTER):
                return lane
        if len(self._lanes) < MAX_LANES:
            logger.info("transcription behind an abandoned one: using a second model copy")
            lane = _Lane(None, Worker(f"stt-{len(self._lanes) + 1}"))
            self._lanes.append(lane)
            return lane
        return self._lanes[0]

    def audio_ctx_for(self, seconds: float) -> int:
        if not self.settings.trim_audio_ctx:
            return 0
        needed = math.ceil(seconds * FULL_AUDIO_CTX / 30.0) + self.settings.audio_ctx_margin
        needed = math.ceil(needed / CTX_STEP) * CTX_STEP
        return 0 if needed >= FULL_AUDIO_CTX else needed

    def recognize_sync(self, audio: AudioFrame, job: Job | None = None) -> tuple[SpeechData, STTMetrics]:
        """Blocking recognition on the first model (tests, doctor); a cancelled ``job`` aborts whisper.cpp
        between decoding steps."""
        return self._recognize(self._lanes[0], audio, job)

    def _recognize(self, lane: _Lane, audio: AudioFrame, job: Job | None) -> tuple[SpeechData, STTMetrics]:
        if lane.model is None:
            lane.model = self._load()
        if audio.sample_rate != SAMPLE_RATE or audio.num_channels != 1:
            raise ValueError("stt takes 16 kHz mono audio; resample first")
        if audio.samples_per_channel == 0:
            raise AudioError("no audio to transcribe: the utterance is empty")
        samples = audio.to_float32()
        if samples.size > 30 * SAMPLE_RATE:
            samples = samples[: 30 * SAMPLE_RATE]
            logger.warning("utterance longer than 30 s cut to 30 s")
        # whisper.cpp refuses less than one second: pad short words with silence.
        if samples.size < SAMPLE_RATE:
            samples = np.concatenate([samples, np.zeros(SAMPLE_RATE - samples.size, np.float32)])
        ctx = self.audio_ctx_for(samples.size / SAMPLE_RATE)
        start = time.perf_counter()
        segments = lane.model.transcribe(
            samples,
            language=self.settings.language,
            audio_ctx=ctx,
            no_context=True,
            single_segment=True,
            no_timestamps=True,
            suppress_blank=True,
            temperature_inc=0.0,  # no fallback decoding: bounded time per utterance
            max_tokens=int(8 * samples.size / SAMPLE_RATE) + 16,  # a hallucination loop stops here
            extract_probability=True,
            abort_callback=(lambda: job.cancelled) if job is not None else None,
        )
        duration = time.perf_counter() - start
        if job is not None and job.cancelled:
            raise JobCancelled
        decoded = " ".join(s.text for s in segments).strip()
        text = without_loop(decoded)
        if is_garbage(text):
            raise ModelError(
                f"whisper.cpp produced garbage ({text[:12]!r}...) from {self.model_path}: the model file may be "
                "corrupted; run `appliance-cli models verify`"
            )
        probs = [s.probability for s in segments if not math.isnan(s.probability)]
        confidence = float(np.exp(np.mean(np.log(np.clip(probs, 1e-6, 1))))) if probs else 0.0
        if text != decoded:
            confidence = 0.0  # a decoding loop: the words may be right, but whisper was not hearing speech clearly
        data = SpeechData(text=text, language=self.settings.language, confidence=confidence)
        return data, STTMetrics(audio.seconds, duration, ctx or FULL_AUDIO_CTX)

    async def recognize(self, audio: AudioFrame, *, start_time: float = 0.0) -> SpeechEvent:
        """Final transcript of one utterance, computed off the event loop."""
        await asyncio.sleep(0)  # a cancellation just requested lands first, so its lane counts as stuck
        lane = self._lane()
        data, metrics = await lane.worker.run(
            lambda job: self._recognize(lane, audio, job), bound=self.settings.timeout, what="transcription"
        )
        data = SpeechData(data.text, data.language, data.confidence, start_time, start_time + audio.seconds)
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, data.end_time, (data,), metrics)

    def close(self) -> None:
        for lane in self._lanes:
            lane.worker.close()
