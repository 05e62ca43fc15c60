"""The VAD stage: 16 kHz frames in, start / inference / end of speech events out."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass, field

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.errors import ConfigError
from appliance.utils.aio import StageStream


class VADEventType(enum.StrEnum):
    START_OF_SPEECH = "start_of_speech"
    INFERENCE_DONE = "inference_done"
    END_OF_SPEECH = "end_of_speech"
    SPEECH_PAUSED = "speech_paused"
    """The user went quiet mid-utterance: the audio so far, exactly as END_OF_SPEECH would carry it if the
    silence lasts, so a caller may start transcribing during the endpointing silence."""


@dataclass(frozen=True)
class VADEvent:
    """What the VAD saw in one window, or a change between speech and silence."""

    type: VADEventType
    timestamp: float
    """Seconds since the start of the stream, at the end of the window that caused the event."""
    probability: float
    """Speech probability of the last window."""
    speech_duration: float
    """Seconds of speech in the current (or just ended) utterance."""
    silence_duration: float
    """Seconds of silence since the last speech."""
    speech_start: float = 0.0
    """Stream time where the utterance began (before padding)."""
    frames: tuple[AudioFrame, ...] = field(default=(), repr=False)
    """END_OF_SPEECH and SPEECH_PAUSED: the utterance, with its pre-roll padding."""
    frames_start: float = 0.0
    """Stream seconds of the first sample of ``frames``."""


@dataclass(frozen=True)
class VADSettings:
    """When speech starts and ends."""

    threshold: float = 0.5
    """Probability at or above which a window is speech."""
    min_speech_duration: float = 0.1
    """Seconds of speech needed before START_OF_SPEECH."""
    min_silence_duration: float = 0.5
    """Seconds of silence that end an utterance."""
    prefix_padding: float = 0.3
    """Seconds of audio kept before the start, so the first syllable is not lost."""
    max_speech_duration: float = 30.0
    """An utterance longer than this is cut and ended (a stuck-open microphone ends somewhere)."""
    energy_floor: float = -55.0
    """dBFS (RMS) below which a window is silence without asking the model: a quiet room costs no
    inference. Speech a microphone should act on is far louder; -100 asks the model about everything."""

    def __post_init__(self) -> None:
        if not 0.05 <= self.threshold <= 0.95:
            raise ConfigError(f"vad.threshold = {self.threshold} is out of range; use 0.05 to 0.95")
        for name in ("min_speech_duration", "min_silence_duration", "prefix_padding"):
            if getattr(self, name) < 0:
                raise ConfigError(f"vad.{name} = {getattr(self, name)} must not be negative")
        if not -100.0 <= self.energy_floor <= -30.0:
            raise ConfigError(f"vad.energy_floor = {self.energy_floor} is out of range; use -100 (off) to -30 dBFS")
        if self.max_speech_duration <= 1.0:
            longest = self.max_speech_duration
            raise ConfigError(f"vad.max_speech_duration = {longest} is too short; use more than 1 second")

    @property
    def deactivation_threshold(self) -> float:
        """Hysteresis: speech continues until the probability drops clearly below the threshold."""
        return max(self.threshold - 0.15, 0.01)


@dataclass(frozen=True)
class VADCapabilities:
    """What a VAD engine works on."""

    sample_rate: int = SAMPLE_RATE
    """Rate of the frames it takes (the listener feeds 16 kHz mono)."""
    window: float = 0.032
    """Seconds of audio per inference (one INFERENCE_DONE event each)."""


class VADStream(StageStream[AudioFrame, VADEvent]):
    """Frames in, events out; a turn detector may end an utterance at a pause, sooner than the silence would."""

    def end_pause(self, at: float, after: float) -> None:
        """End the utterance that paused at stream time ``at`` (its SPEECH_PAUSED event's ``timestamp``) once
        that pause has lasted ``after`` seconds, unless the user speaks again first. A stream that cannot
        keeps to ``min_silence_duration``."""
        return None


class VAD(abc.ABC):
    """A voice activity detector: hands out streams, each with its own state, that share the engine."""

    capabilities: VADCapabilities
    settings: VADSettings
    """The default settings of its streams."""

    @abc.abstractmethod
    def stream(self, settings: VADSettings | None = None) -> VADStream:
        """A new stream; ``settings`` overrides the VAD's own for this stream (the session's endpointing)."""

    def close(self) -> None:
        """Release the engine (after every stream is closed)."""
        return None
