"""The TTS stage: text in, audio frames at the voice's rate out."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass

from appliance.audio.frame import AudioFrame
from appliance.providers.attempt import FailedAttempt


@dataclass(frozen=True)
class SynthesizedAudio:
    """A block of synthesized speech."""

    frame: AudioFrame
    text: str
    """The text this audio speaks (a sentence, or a clause); empty for the later pieces of a sentence whose
    audio comes in several pieces (they continue the sentence of the piece before)."""


@dataclass(frozen=True)
class TTSMetrics:
    """Cost of one synthesis request (one segment, or a whole streamed reply)."""

    request_id: str
    ttfb: float
    """Seconds from the first text to the first audio (-1 if no audio)."""
    duration: float
    """Seconds of wall time spent synthesizing."""
    audio_duration: float
    """Seconds of audio produced."""
    characters: int
    cancelled: bool
    provider: str = ""
    """Which provider spoke (set by a fallback adapter)."""
    failed_attempts: tuple[FailedAttempt, ...] = ()
    """The tries that failed before it (a fallback adapter's)."""

    @property
    def rtf(self) -> float:
        return self.duration / self.audio_duration if self.audio_duration else 0.0


@dataclass(frozen=True)
class TTSCapabilities:
    streaming: bool = False
    """It takes text as it comes and speaks before the sentence is complete (else: sentence by sentence)."""
    sample_rate: int = 22050
    """Rate of the audio it produces."""


class SynthesizeStream(abc.ABC):
    """``push_text()``/``flush()``/``end_input()`` in, ``SynthesizedAudio`` out; ``aclose()`` cancels at the engine."""

    request_id: str
    metrics: TTSMetrics | None
    """Filled in once the stream has ended (or was stopped)."""

    @abc.abstractmethod
    def push_text(self, text: str) -> None: ...

    @abc.abstractmethod
    def flush(self) -> None:
        """Speak what is buffered now, even if the sentence is not finished."""

    @abc.abstractmethod
    def end_input(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[SynthesizedAudio]:
        return self

    @abc.abstractmethod
    async def __anext__(self) -> SynthesizedAudio: ...

    @abc.abstractmethod
    async def aclose(self) -> None: ...


class TTS(abc.ABC):
    """A voice: text in, speech out."""

    capabilities: TTSCapabilities
    label: str = "tts"
    """Which engine or provider this is (for logs and metrics)."""

    @property
    def sample_rate(self) -> int:
        return self.capabilities.sample_rate

    @abc.abstractmethod
    def stream(self) -> SynthesizeStream:
        """A stream fed with text pieces (LLM tokens)."""

    def synthesize(self, text: str) -> SynthesizeStream:
        """Speak ``text`` (any length)."""
        stream = self.stream()
        stream.push_text(text)
        stream.end_input()
        return stream

    def offline(self) -> TTS:
        """The voice for messages made ahead of time (the apology): one that needs nothing off the device if
        this voice has one (a fallback voice gives its local provider), else this voice."""
        return self

    async def aclose(self) -> None:
        """Close what the engine holds open on the event loop (a provider's connections), on that loop."""
        return None

    def close(self) -> None:
        """Release the engine."""
        return None


async def synthesize_all(tts: TTS, text: str) -> AudioFrame:
    """All of ``text`` as one frame at the voice's rate."""
    import numpy as np

    stream = tts.synthesize(text)
    try:
        frames = [audio.frame.data async for audio in stream]
    finally:
        await stream.aclose()
    return AudioFrame(np.concatenate(frames) if frames else np.zeros(0, np.int16), tts.sample_rate)
