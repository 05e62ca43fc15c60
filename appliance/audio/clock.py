"""Device timestamps of an audio stream, smoothed into one line: when sample ``n`` met the converter."""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np

WINDOW = 32
"""Blocks whose timestamps are pooled (about a second)."""
JUMP = 0.05
"""Seconds a block's timestamp may stray from the line before the stream counts as restarted."""


class StreamClock:
    """``time_of(n)``: the ``time.monotonic()`` when sample ``n`` of the stream was captured or will be heard.

    A device gives a timestamp with every block, but through a sound server it jitters by tens of ms from
    block to block. The samples themselves run on the converter's clock, so the line ``offset + n / rate``
    fits them all; the offset is the median over the last blocks. A timestamp far off the line (the stream
    was reopened, or ran dry and the converter went on without it) starts a new line.
    """

    def __init__(self, rate: int, window: int = WINDOW, jump: float = JUMP) -> None:
        self.rate = rate
        self._offsets: collections.deque[float] = collections.deque(maxlen=window)
        self._jump = jump
        self._offset: float | None = None
        self.restarts = 0

    def stamp(self, n: int, at: float) -> None:
        """Block starting at sample ``n`` was at the converter at monotonic time ``at``."""
        offset = at - n / self.rate
        if self._offset is not None and abs(offset - self._offset) > self._jump:
            self._offsets.clear()
            self.restarts += 1
        self._offsets.append(offset)
        self._offset = float(np.median(self._offsets))

    def time_of(self, n: float) -> float:
        if self._offset is None:
            raise RuntimeError("StreamClock.time_of before any stamp()")
        return self._offset + n / self.rate

    def reset(self) -> None:
        self._offsets.clear()
        self._offset = None


def capture_time(time_info: Any, frames: int, rate: int, latency: float) -> float:
    """Monotonic time the first sample of an input block was captured: from the device's own timestamps,
    or, when it gives none that make sense, from now, the block's length and the stream's latency."""
    now = time.monotonic()
    if time_info is not None:
        lag = float(time_info.currentTime - time_info.inputBufferAdcTime)
        if 0.0 <= lag < 1.0:
            return now - lag
    return now - frames / rate - latency


def play_time(time_info: Any, latency: float) -> float:
    """Monotonic time the first sample of an output block will be heard (see :func:`capture_time`)."""
    now = time.monotonic()
    if time_info is not None:
        lead = float(time_info.outputBufferDacTime - time_info.currentTime)
        if 0.0 <= lead < 1.0:
            return now + lead
    return now + latency
