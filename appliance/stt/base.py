"""The STT stage: an utterance in, a final transcript out."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from appliance.audio.frame import AudioFrame


class SpeechEventType(enum.StrEnum):
    START_OF_SPEECH = "start_of_speech"
    END_OF_SPEECH = "end_of_speech"
    FINAL_TRANSCRIPT = "final_transcript"


@dataclass(frozen=True)
class SpeechData:
    """One recognised utterance."""

    text: str
    language: str
    confidence: float
    """Geometric mean of the token probabilities, in [0, 1]."""
    start_time: float = 0.0
    """Stream time of the utterance start (seconds)."""
    end_time: float = 0.0
    """Stream time of the utterance end (seconds)."""


@dataclass(frozen=True)
class STTMetrics:
    """Cost of one recognition."""

    audio_duration: float
    """Seconds of audio recognised."""
    duration: float
    """Wall seconds the recognition took."""
    audio_ctx: int
    """Encoder positions used (whisper.cpp audio context; 1500 is the full 30 s window)."""

    @property
    def rtf(self) -> float:
        return self.duration / self.audio_duration if self.audio_duration else 0.0


@dataclass(frozen=True)
class SpeechEvent:
    """An event of a speech stream."""

    type: SpeechEventType
    timestamp: float
    """Stream time of the event (seconds)."""
    alternatives: tuple[SpeechData, ...] = ()
    """FINAL_TRANSCRIPT: the transcript (one alternative)."""
    metrics: STTMetrics | None = None
    """FINAL_TRANSCRIPT: what the recognition cost."""


class STT(Protocol):
    """Anything that recognises a whole utterance."""

    async def recognize(self, audio: AudioFrame) -> SpeechEvent: ...

    def close(self) -> None: ...
