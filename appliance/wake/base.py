"""The wake-word stage: 16 kHz int16 frames in, detections out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from appliance.audio.frame import AudioFrame
from appliance.utils.aio import EventStream


@dataclass(frozen=True)
class WakeDetected:
    """A wake word was heard."""

    name: str
    """Which wake word (model name)."""
    score: float
    """Model score in [0, 1] at the detection."""
    timestamp: float
    """Seconds since the start of the stream, at the end of the audio that triggered it."""


WakeStream = EventStream[AudioFrame, WakeDetected]


class WakeDetector(Protocol):
    """Anything that hands out wake streams."""

    @property
    def names(self) -> tuple[str, ...]: ...

    def stream(self) -> WakeStream: ...

    def close(self) -> None: ...
