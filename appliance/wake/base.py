"""The wake-word stage: 16 kHz int16 frames in, detections out."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.errors import ConfigError
from appliance.utils.aio import StageStream


@dataclass(frozen=True)
class WakeDetected:
    """A wake word was heard."""

    name: str
    """Which wake word (model name)."""
    score: float
    """Model score in [0, 1] at the detection."""
    timestamp: float
    """Seconds of audio fed to the stream, at the end of the audio that triggered it."""


@dataclass(frozen=True)
class WakeSettings:
    """When a score counts as the wake word."""

    threshold: float = 0.5
    """Score at or above which a chunk counts as the wake word."""
    patience: int = 1
    """Consecutive chunks at or above the threshold needed to fire."""
    refractory: float = 2.0
    """Seconds after a detection during which the same word does not fire again."""

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"wake.threshold = {self.threshold} is out of range; use a value between 0 and 1")
        if self.patience < 1:
            raise ConfigError(f"wake.patience = {self.patience} must be at least 1 chunk")
        if self.refractory < 0:
            raise ConfigError(f"wake.refractory = {self.refractory} must not be negative")


@dataclass(frozen=True)
class WakeCapabilities:
    sample_rate: int = SAMPLE_RATE
    chunk: float = 0.08
    """Seconds of audio per score."""


WakeStream = StageStream[AudioFrame, WakeDetected]
"""Frames pushed in (not necessarily contiguous: the listener feeds only speech-like stretches), detections out,
timestamped on the clock of the audio fed."""


class WakeScorer(abc.ABC):
    """One listener's detection state, scored on demand: the listener awaits each stretch it feeds, so a
    detection is known before the speech that follows it is handled (a recording is read faster than real time)."""

    @abc.abstractmethod
    async def score(self, frames: list[AudioFrame]) -> list[WakeDetected]:
        """Detections in ``frames`` (bounded in time by the engine: ``APITimeoutError``)."""

    async def aclose(self) -> None:
        return None


class WakeDetector(abc.ABC):
    """Hands out wake streams (or scorers), each with its own detection state."""

    capabilities: WakeCapabilities
    settings: WakeSettings

    @property
    @abc.abstractmethod
    def names(self) -> tuple[str, ...]:
        """The wake words it listens for."""

    @abc.abstractmethod
    def stream(self) -> WakeStream: ...

    @abc.abstractmethod
    def scorer(self) -> WakeScorer: ...

    def close(self) -> None:
        """Release the engine (after every stream is closed)."""
        return None
