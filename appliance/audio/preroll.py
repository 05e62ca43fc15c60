"""A ring buffer of the most recent audio, addressed by sample position since the stream began."""

from __future__ import annotations

import collections

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame


class PreRoll:
    """Keeps the last ``seconds`` of 16 kHz audio, so a stage switched on late can start in the past."""

    def __init__(self, seconds: float) -> None:
        self.capacity = int(seconds * SAMPLE_RATE)
        self._frames: collections.deque[tuple[int, AudioFrame]] = collections.deque()
        self.end = 0
        """Samples pushed since the start: the position just after the newest sample."""

    @property
    def start(self) -> int:
        """Position of the oldest sample still held."""
        return self._frames[0][0] if self._frames else self.end

    def push(self, frame: AudioFrame) -> None:
        self._frames.append((self.end, frame))
        self.end += frame.samples_per_channel
        while self._frames and self.end - (self._frames[0][0] + self._frames[0][1].samples_per_channel) >= (
            self.capacity
        ):
            self._frames.popleft()

    def between(self, begin: int, end: int | None = None) -> AudioFrame:
        """The held audio from position ``begin`` (clipped to what is held) up to ``end`` (default: now)."""
        end = self.end if end is None else min(end, self.end)
        parts = []
        for pos, frame in self._frames:
            lo, hi = max(begin, pos), min(end, pos + frame.samples_per_channel)
            if lo < hi:
                parts.append(frame.data[lo - pos : hi - pos])
        return AudioFrame(np.concatenate(parts) if parts else np.zeros(0, np.int16), SAMPLE_RATE)
