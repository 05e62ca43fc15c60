"""The STT stage: an utterance in, a final transcript out."""

from __future__ import annotations

import abc
import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.providers.attempt import FailedAttempt


class SpeechEventType(enum.StrEnum):
    START_OF_SPEECH = "start_of_speech"
    END_OF_SPEECH = "end_of_speech"
    INTERIM_TRANSCRIPT = "interim_transcript"
    """A guess at the words so far (a streaming STT); later events may revise it."""
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


def words_so_far(finals: Sequence[SpeechData], interim: str = "") -> str:
    """What a streamed utterance has said: its final segments' words, then the interim guess after them."""
    return " ".join(t for t in [*(f.text for f in finals), interim] if t)


def joined(
    finals: Sequence[SpeechData], *, language: str | None = None, start: float | None = None, end: float | None = None
) -> SpeechData:
    """The final segments of one utterance as one transcript: their words in order, their mean confidence,
    and (unless given) the first one's language and start and the last one's end."""
    first, last = (finals[0], finals[-1]) if finals else (None, None)
    return SpeechData(
        words_so_far(finals),
        language if language is not None else first.language if first else "",
        sum(f.confidence for f in finals) / len(finals) if finals else 0.0,
        start if start is not None else first.start_time if first else 0.0,
        end if end is not None else last.end_time if last else 0.0,
    )


@dataclass(frozen=True)
class STTMetrics:
    """Cost of one recognition."""

    audio_duration: float
    """Seconds of audio recognised."""
    duration: float
    """Wall seconds the recognition took."""
    audio_ctx: int
    """Encoder positions used (whisper.cpp audio context; 1500 is the full 30 s window)."""
    provider: str = ""
    """Which provider recognised it (set by a fallback adapter)."""
    failed_attempts: tuple[FailedAttempt, ...] = ()
    """The tries that failed before it (a fallback adapter's)."""

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
    """INTERIM_TRANSCRIPT, FINAL_TRANSCRIPT: the transcript (one alternative)."""
    metrics: STTMetrics | None = None
    """FINAL_TRANSCRIPT: what the recognition cost."""


@dataclass(frozen=True)
class STTCapabilities:
    streaming: bool = False
    """It takes audio as it comes and gives interim results (else: one whole utterance at a time)."""
    interim_results: bool = False
    sample_rate: int = SAMPLE_RATE
    """Rate of the audio it takes (the agent hands it 16 kHz mono)."""


class SpeechStream(abc.ABC):
    """Audio pushed as it is captured; ``async for event in stream`` gives interim and final transcripts (and,
    where the provider detects them, start and end of speech). ``aclose()`` stops the recognition."""

    @abc.abstractmethod
    def push_frame(self, frame: AudioFrame) -> None:
        """Queue 16 kHz mono audio (never blocks)."""

    @abc.abstractmethod
    def end_input(self) -> None:
        """No more audio: the provider finishes what it heard, sends its last finals, and the stream ends."""

    def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        return self

    @abc.abstractmethod
    async def __anext__(self) -> SpeechEvent:
        """The next event; an ``APIError`` if the provider failed."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...


class STT(abc.ABC):
    """Recognises speech: a whole utterance in, its final transcript out."""

    capabilities: STTCapabilities
    label: str = "stt"
    """Which engine or provider this is (for logs and metrics)."""

    @abc.abstractmethod
    async def recognize(self, audio: AudioFrame, *, start_time: float = 0.0) -> SpeechEvent:
        """The FINAL_TRANSCRIPT of ``audio``; bounded in time by the engine (``APITimeoutError``), and
        cancelling the call stops the work at the engine."""

    def stream(self) -> SpeechStream:
        """Recognise as the audio comes (only where ``capabilities.streaming``)."""
        raise NotImplementedError(f"{self.label} does not stream; use recognize()")

    async def aclose(self) -> None:
        """Close what the engine holds open on the event loop (a provider's connections), on that loop."""
        return None

    def close(self) -> None:
        """Release the engine."""
        return None
