"""Piper voices (ONNX) through ``piper-tts``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from appliance.audio.frame import AudioFrame
from appliance.errors import ConfigError, ModelError
from appliance.tts.base import TTS, TTSCapabilities
from appliance.tts.stream import SentenceSynthesizeStream
from appliance.utils.worker import Job, JobCancelled, Worker

logger = logging.getLogger(__name__)

KNOWN_TEXT = "Hello, how are you today?"
MIN_SECONDS = 0.3
"""Audio ``KNOWN_TEXT`` lasts at the least, at any speaking rate."""
MIN_LEVELS = 100
"""Distinct sample values in spoken words at the least: a voice has thousands, silence one, and the full-scale
square wave that broken weights make two or three."""


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
        if not 0.1 <= self.timeout <= 300:
            raise ConfigError(f"tts.timeout = {self.timeout} is out of range; use 0.1 to 300 seconds")
        for name in ("noise_scale", "noise_w"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 2.0:
                raise ConfigError(f"tts.{name} = {value} is out of range; use 0 to 2 (or leave it unset)")


class PiperTTS(TTS):
    """Synthesizes on its own worker thread, sentence by sentence; a cancelled sentence stops at the next
    piece Piper hands back."""

    label = "piper"

    def __init__(
        self, model_path: Path, config_path: Path | None = None, settings: PiperSettings | None = None
    ) -> None:
        from piper import PiperVoice, SynthesisConfig

        self.settings = settings or PiperSettings()
        config_path = config_path or model_path.with_name(model_path.name + ".json")
        if not config_path.is_file():
            raise ModelError(
                f"Piper voice config {config_path} is missing; run `appliance-cli models fetch --role tts`"
            )
        try:
            self._voice = PiperVoice.load(model_path, config_path=config_path)
        except Exception as exc:  # onnxruntime and json raise their own types for a bad file
            raise ModelError(f"Piper could not load {model_path} ({exc}); run `appliance-cli models verify`") from exc
        self._syn = SynthesisConfig(
            length_scale=self.settings.length_scale,
            volume=self.settings.volume,
            noise_scale=self.settings.noise_scale,
            noise_w_scale=self.settings.noise_w,
        )
        self.capabilities = TTSCapabilities(streaming=False, sample_rate=int(self._voice.config.sample_rate))
        self._worker = Worker("tts")
        self._requests = 0

    def synthesize_sync(self, text: str, job: Job | None = None) -> AudioFrame:
        """All of ``text`` as one frame (blocking); a cancelled ``job`` stops between Piper's pieces."""
        chunks = []
        for chunk in self._voice.synthesize(text, self._syn):
            if job is not None and job.cancelled:
                raise JobCancelled
            chunks.append(chunk.audio_int16_array)
        data = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return AudioFrame(data.astype(np.int16, copy=False), self.sample_rate)

    def check_output(self) -> str | None:
        """What is wrong with this voice's audio for a known phrase; None if a working voice could have made it.
        Broken weights fail inside onnxruntime, or make silence or a full-scale buzz, for every sentence."""
        try:
            with np.errstate(invalid="ignore"):  # NaN samples from broken weights: said below, not as a warning
                audio = self.synthesize_sync(KNOWN_TEXT)
        except Exception as exc:  # onnxruntime raises its own types for a node that broken weights upset
            return f"it failed to speak a known phrase ({exc})"
        if audio.seconds < MIN_SECONDS:
            return f"it spoke {KNOWN_TEXT!r} as {audio.seconds:.2f} s of audio"
        levels = len(np.unique(audio.data))
        if levels < MIN_LEVELS:
            sound = "silence" if levels == 1 else f"a signal of {levels} levels"
            return f"it spoke {KNOWN_TEXT!r} as {audio.seconds:.2f} s of {sound}"
        return None

    async def _synthesize_segment(self, text: str) -> AudioFrame:
        return await self._worker.run(
            lambda job: self.synthesize_sync(text, job), bound=self.settings.timeout, what="speech synthesis"
        )

    def stream(self) -> SentenceSynthesizeStream:
        self._requests += 1
        return SentenceSynthesizeStream(self._synthesize_segment, f"tts_{self._requests}")

    def close(self) -> None:
        self._worker.close()
