"""A live microphone level meter: one redrawn line on a terminal, an occasional plain line elsewhere."""

from __future__ import annotations

import time
from typing import TextIO

BAR_WIDTH = 40
BAR_FLOOR = -80.0
"""dBFS at the left end of the bar (the right end is 0 dBFS)."""
TTY_INTERVAL = 0.1
"""Seconds between redraws on a terminal."""
PLAIN_INTERVAL = 1.0
"""Seconds between lines when the output is a log or a pipe."""


def bar(level_dbfs: float, width: int = BAR_WIDTH) -> str:
    """``[#####-----]``: the level between :data:`BAR_FLOOR` and 0 dBFS."""
    filled = round(width * min(1.0, max(0.0, (level_dbfs - BAR_FLOOR) / -BAR_FLOOR)))
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class LevelMeter:
    """Fed every microphone block's level; shows the loudest since the last draw, and the phase's time left."""

    def __init__(self, out: TextIO, *, tty: bool | None = None) -> None:
        self._out = out
        self._tty = out.isatty() if tty is None else tty
        self._label = ""
        self._ends_at: float | None = None
        self._loudest = float("-inf")
        self._last_draw = 0.0
        self._drawn = False
        self._active = False

    def phase(self, label: str, seconds: float | None = None) -> None:
        """Start showing a new phase (``seconds``: its length, for the countdown)."""
        self.clear()
        self._label = label
        self._ends_at = time.monotonic() + seconds if seconds else None
        self._loudest = float("-inf")
        self._last_draw = time.monotonic()
        self._active = True

    def update(self, level_dbfs: float) -> None:
        if not self._active:
            return
        self._loudest = max(self._loudest, level_dbfs)
        now = time.monotonic()
        if now - self._last_draw < (TTY_INTERVAL if self._tty else PLAIN_INTERVAL):
            return
        self._last_draw = now
        self._draw(self._loudest, now)
        self._loudest = float("-inf")

    def line(self, level_dbfs: float, now: float) -> str:
        left = f"  {max(0.0, self._ends_at - now):4.1f} s left" if self._ends_at is not None else ""
        return f"{self._label:<12} {bar(level_dbfs)} {level_dbfs:6.1f} dBFS{left}"

    def _draw(self, level: float, now: float) -> None:
        if self._tty:
            self._out.write("\r" + self.line(level, now) + "\x1b[K")
            self._drawn = True
        else:
            self._out.write("level: " + self.line(level, now) + "\n")
        self._out.flush()

    def stop(self) -> None:
        """The phase is over: no more drawing until the next one."""
        self.clear()
        self._active = False

    def clear(self) -> None:
        """End the redrawn line, so the next printed line starts clean."""
        if self._tty and self._drawn:
            self._out.write("\r\x1b[K")
            self._out.flush()
        self._drawn = False
