"""The local assistant stepping aside for a room: the microphone as the local session hears it.

While the device serves a remote user (agent mode) the local session hears silence, so it neither wakes nor
answers, and its clocks and the watchdog go on as in a quiet room. While the device is in a relay, the
microphone's frames (after echo cancellation, so the room does not hear itself back) go to the room; the
local session may still hear them (to catch "hey jarvis, hang up") when ``hear_while_relaying``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import numpy as np

from appliance.audio.frame import AudioFrame
from appliance.audio.io import AudioInput

logger = logging.getLogger(__name__)


class AsideInput(AudioInput):
    """Passes ``inner``'s frames through, or silence in their place while ``aside``; ``tap`` gets the real
    frames meanwhile (a relay publishes them)."""

    def __init__(self, inner: AudioInput) -> None:
        self.inner = inner
        self.realtime = inner.realtime
        self.aside = False
        self.tap: Callable[[AudioFrame], None] | None = None
        self.hear_while_relaying = False
        """With a tap: the local session hears the microphone too (its wake word still works)."""

    @property
    def captured_at(self) -> float | None:  # type: ignore[override]
        return self.inner.captured_at

    def step_aside(self, tap: Callable[[AudioFrame], None] | None = None, *, hear: bool = False) -> None:
        self.aside, self.tap, self.hear_while_relaying = True, tap, hear
        logger.info("local assistant steps aside", extra={"relay": tap is not None, "hears": hear})

    def come_back(self) -> None:
        if self.aside:
            logger.info("local assistant back")
        self.aside, self.tap, self.hear_while_relaying = False, None, False

    async def _frames(self) -> AsyncIterator[AudioFrame]:
        async for frame in self.inner:
            if not self.aside:
                yield frame
                continue
            if self.tap is not None:
                self.tap(frame)
                if self.hear_while_relaying:
                    yield frame
                    continue
            yield AudioFrame(np.zeros_like(frame.data), frame.sample_rate)

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()

    async def aclose(self) -> None:
        await self.inner.aclose()
