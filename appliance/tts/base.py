"""The TTS stage: text in, audio frames at the voice's rate out."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.audio.frame import AudioFrame


@dataclass(frozen=True)
class SynthesizedAudio:
    """A block of synthesized speech."""

    frame: AudioFrame
    segment_id: str
    """The sentence (segment) this audio speaks."""
    text: str
    """The text of that segment."""


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

    @property
    def rtf(self) -> float:
        return self.duration / self.audio_duration if self.audio_duration else 0.0
