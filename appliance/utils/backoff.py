"""Waits that grow after each failure: reopening a device, restarting a failed stage."""

from __future__ import annotations


class Backoff:
    """Waits that double after each failure, up to a ceiling, and start over after a success."""

    def __init__(self, initial: float = 0.5, ceiling: float = 30.0) -> None:
        self.initial, self.ceiling = initial, ceiling
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.ceiling)
        return delay

    def reset(self) -> None:
        self._next = self.initial
