"""The far end: what the speaker played, on the same time line as the microphone, at 16 kHz."""

from __future__ import annotations

import collections
import math
import threading

import numpy as np

from appliance.audio.clock import StreamClock
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.resample import Resampler

RING_SECONDS = 4.0
"""How far back the reference is kept: more than any echo delay plus the microphone's own lag."""
SNAP = 0.05
"""Seconds of disagreement between a block's place and the end of the last one that still counts as
contiguous (timestamp jitter), rather than a new start."""
SETTLE_BLOCKS = 8
"""Blocks of a new line placed by the clock's estimate, which improves with every stamp, before the line
is only continued (a single stamp is off by up to the jitter; the median of eight by far less)."""
PENDING_PER_SECOND = 400
"""Blocks per second of the ring the audio thread may leave unread (blocks of 2.5 ms or more fill no more than
the ring); older ones are dropped when no one reads."""


class PlayedAudio:
    """Filled from the speaker's audio callback (``tap``); read by the echo canceller (``read``).

    ``tap`` only copies the block with its timestamp; resampling and placing happen in ``read``, on the
    reader's side, so the audio thread does no more work than before.
    """

    def __init__(self, ring_seconds: float = RING_SECONDS) -> None:
        self._size = 1 << math.ceil(math.log2(ring_seconds * SAMPLE_RATE))
        self._ring = np.zeros(self._size, np.int16)
        self._end: int | None = None
        """Absolute 16 kHz index (``round(monotonic * 16000)``) just after the last sample placed."""
        self._pending: collections.deque[tuple[np.ndarray, int, float, bool]] = collections.deque(
            maxlen=math.ceil(ring_seconds * PENDING_PER_SECOND)
        )
        self._lock = threading.Lock()
        self._rate = 0
        self._clock: StreamClock | None = None
        self._resampler: Resampler | None = None
        self._fed = 0
        """Samples of the current stream handed to the clock (at the speaker's rate)."""
        self._made = 0
        """16 kHz samples made from them so far."""
        self.blocks = 0
        self.underruns = 0
        """Blocks after which the device had run dry (each one placed anew)."""
        self.anchors = 0
        """Times the line was placed anew by the timestamps (a new stream, a device that ran dry): each one
        moves the echo a few ms for the canceller."""
        self._settling = 0

    def tap(self, samples: np.ndarray, rate: int, heard_at: float, ran_dry: bool = False) -> None:
        """From the audio thread: the block just handed to the device, when its first sample is heard, and
        whether the device ran out of audio before it (it played silence we did not give it: the block is
        placed by its own time, not after the last one)."""
        self._pending.append((samples.copy(), rate, heard_at, ran_dry))

    def read(self, at: float, n: int) -> np.ndarray:
        """``n`` samples at 16 kHz, the first heard at monotonic time ``at``; silence where nothing played."""
        self._place_pending()
        start = round(at * SAMPLE_RATE)
        out = np.zeros(n, np.int16)
        if self._end is None:
            return out
        lo, hi = max(start, self._end - self._size), min(start + n, self._end)
        if hi > lo:
            idx = np.arange(lo, hi) & (self._size - 1)
            out[lo - start : hi - start] = self._ring[idx]
        return out

    def written_until(self) -> float | None:
        """Monotonic time just after the last sample known (None: nothing played yet)."""
        self._place_pending()
        return None if self._end is None else self._end / SAMPLE_RATE

    def _place_pending(self) -> None:
        with self._lock:  # one reader at a time places what the audio thread left
            while self._pending:
                samples, rate, heard_at, ran_dry = self._pending.popleft()
                self._place(samples, rate, heard_at, ran_dry)

    def _place(self, samples: np.ndarray, rate: int, heard_at: float, ran_dry: bool) -> None:
        self.blocks += 1
        if ran_dry:
            self.underruns += 1
        if rate != self._rate or self._clock is None or ran_dry:
            self._rate, self._clock = rate, StreamClock(rate)
            self._resampler = Resampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None
            self._fed = self._made = 0
        restarts = self._clock.restarts
        self._clock.stamp(self._fed, heard_at)
        if self._clock.restarts != restarts and self._resampler is not None:
            self._resampler = Resampler(rate, SAMPLE_RATE)  # a new stream: no tail of the old one in it
            self._made = round(self._fed * SAMPLE_RATE / rate)
        frame = AudioFrame(samples, rate)
        out = self._resampler.push(frame).data if self._resampler is not None else samples
        first = self._clock.time_of(self._made * rate / SAMPLE_RATE)
        self._fed += samples.size
        self._made += out.size
        if not out.size:
            return
        start = round(first * SAMPLE_RATE)
        if self._end is None or abs(start - self._end) > SNAP * SAMPLE_RATE or ran_dry:
            self._settling = SETTLE_BLOCKS  # a new line: placed by the clock until it has a few stamps
            self.anchors += 1
        if self._settling:
            self._settling -= 1
        else:
            start = self._end if self._end is not None else start
        if self._end is not None and start > self._end:
            gap = min(start - self._end, self._size)
            self._ring[np.arange(self._end, self._end + gap) & (self._size - 1)] = 0
        idx = np.arange(start, start + out.size) & (self._size - 1)
        self._ring[idx] = out
        self._end = start + out.size
