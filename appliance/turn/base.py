"""The turn stage: the utterance so far in, the probability that the user has finished out."""

from __future__ import annotations

import abc
from dataclasses import dataclass

from appliance.audio.frame import AudioFrame
from appliance.errors import ConfigError


@dataclass(frozen=True)
class TurnSettings:
    """When a pause ends the turn."""

    threshold: float = 0.5
    """Probability at or above which the utterance is complete."""

    def __post_init__(self) -> None:
        if not 0.05 <= self.threshold <= 0.95:
            raise ConfigError(f"turn.threshold = {self.threshold} is out of range; use 0.05 to 0.95")


class TurnDetector(abc.ABC):
    """Judges, at a pause, whether the utterance is finished (from how it sounds, not from its words)."""

    label: str = "turn"
    """Which engine this is (for logs and metrics)."""
    settings: TurnSettings

    @abc.abstractmethod
    async def completion(self, audio: AudioFrame) -> float:
        """Probability that the user finished the turn, from the utterance so far (16 kHz mono, ending at the
        pause). Inference runs on a worker thread, never on the event loop, bounded in time
        (``APITimeoutError``); cancelling the call stops the work at the engine."""

    def complete(self, probability: float) -> bool:
        """Whether ``probability`` (from :meth:`completion`) ends the turn."""
        return probability >= self.settings.threshold

    def close(self) -> None:
        """Release the engine."""
        return None
