"""The echo canceller's interface, and the figures every canceller keeps about how well it works."""

from __future__ import annotations

import abc
import collections
import math
from dataclasses import dataclass

import numpy as np

from appliance.audio.frame import SAMPLE_RATE

BLOCK = SAMPLE_RATE // 100
"""Samples per block: 10 ms at 16 kHz, the unit WebRTC's audio processing works in."""
FAR_ACTIVE_DBFS = -50.0
"""A block of the reference louder than this is the speaker playing (quieter: silence, a fade)."""
WINDOW_BLOCKS = 200
"""Blocks with the speaker playing that the live figures pool (2 s)."""
CONVERGED_DB = 10.0
"""Echo reduced by this much over the window counts as converged."""
MIN_BLOCKS = 100
"""Blocks with the speaker playing needed before the ERLE is given (1 s)."""
MIN_ECHO_BLOCKS = 20
"""Blocks with the speaker playing needed before the echo's level is given (0.2 s)."""


@dataclass(frozen=True)
class EchoFigures:
    """How the canceller is doing, over the last :data:`WINDOW_BLOCKS` blocks with the speaker playing."""

    blocks: int
    """10 ms blocks processed in all."""
    far_blocks: int
    """Of them, blocks with the speaker playing."""
    erle_db: float | None
    """Echo return loss enhancement: microphone power before over after cancellation (None: not enough yet)."""
    echo_db: float | None
    """The microphone's power relative to the speaker's (how loud the echo is before cancellation)."""
    converged: bool

    def as_dict(self) -> dict[str, object]:
        return {
            "blocks": self.blocks,
            "far_blocks": self.far_blocks,
            "erle_db": None if self.erle_db is None else round(self.erle_db, 1),
            "echo_db": None if self.echo_db is None else round(self.echo_db, 1),
            "converged": self.converged,
        }


class EchoCanceller(abc.ABC):
    """Takes the speaker's sound out of the microphone's, 10 ms at a time.

    ``process(near, far)``: ``near`` is what the microphone captured, ``far`` what the speaker played at
    the same moment (both :data:`BLOCK` int16 samples at 16 kHz); returns the microphone without the echo.
    """

    def __init__(self) -> None:
        self._window: collections.deque[tuple[float, float, float]] = collections.deque(maxlen=WINDOW_BLOCKS)
        self._sums = [0.0, 0.0, 0.0]
        self.blocks = 0
        self.far_blocks = 0

    @abc.abstractmethod
    def _cancel(self, near: np.ndarray, far: np.ndarray) -> np.ndarray: ...

    def set_delay(self, seconds: float) -> None:  # noqa: B027 (a hint: a canceller may ignore it)
        """The expected delay from ``far`` to its echo in ``near`` (a hint; the canceller tracks it)."""

    def process(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """``cancel`` and ``count``: for a microphone that hears only the echo."""
        out = self.cancel(near, far)
        self.count(near, far, out)
        return out

    def cancel(self, near: np.ndarray, far: np.ndarray) -> np.ndarray:
        """One block without the echo, not counted in the figures."""
        if near.size != BLOCK or far.size != BLOCK:
            raise ValueError(f"echo cancellation works on blocks of {BLOCK} samples")
        self.blocks += 1
        return self._cancel(near, far)

    def count(self, near: np.ndarray, far: np.ndarray, out: np.ndarray) -> None:
        """Count a block in the figures. A caller that can tell leaves out the blocks where the user talks over
        the speaker: their voice is in the microphone and the output alike, and would read as echo the
        canceller did not take out (after a talk-over, the last 2 s read 3 dB, "not converged", until the
        next reply)."""
        far_power = _power(far)
        if far_power > 10 ** (FAR_ACTIVE_DBFS / 10):
            self.far_blocks += 1
            entry = (_power(near), _power(out), far_power)
            if len(self._window) == self._window.maxlen:
                old = self._window[0]
                self._sums = [s - o for s, o in zip(self._sums, old, strict=True)]
            self._window.append(entry)
            self._sums = [s + e for s, e in zip(self._sums, entry, strict=True)]

    def figures(self) -> EchoFigures:
        if len(self._window) < MIN_ECHO_BLOCKS:
            return EchoFigures(self.blocks, self.far_blocks, None, None, False)
        near, out, far = (max(s, 1e-12) for s in self._sums)
        echo = 10 * math.log10(near / far)
        if len(self._window) < MIN_BLOCKS:
            return EchoFigures(self.blocks, self.far_blocks, None, echo, False)
        erle = 10 * math.log10(near / out)
        return EchoFigures(self.blocks, self.far_blocks, erle, echo, erle >= CONVERGED_DB)

    def close(self) -> None:
        return None


def _power(block: np.ndarray) -> float:
    x = block.astype(np.float64) / 32768.0
    return float(np.dot(x, x)) / x.size
