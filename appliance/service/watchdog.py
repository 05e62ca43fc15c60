"""The systemd watchdog, fed only while audio really flows from the microphone into the agent.

The pings come from the audio path itself: the task that sends them runs on the event loop (a wedged loop
sends nothing) and sends only while the listener has taken a frame recently (a hung capture or a stuck
listener sends nothing). A microphone that went away is retried in-process with backoff; for a bounded
time that counts as alive, because restarting the process cannot bring a device back, and after it
systemd restarts the service for a clean start.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable

from appliance.audio.frame import AudioFrame
from appliance.audio.io import AudioInput
from appliance.service.notify import Notifier

logger = logging.getLogger(__name__)

PINGS_PER_INTERVAL = 3
"""Pings per watchdog period, so one late wake-up of the loop is not a restart."""


class HeartbeatInput(AudioInput):
    """Passes an input's frames through and remembers when the reader last took one."""

    def __init__(self, inner: AudioInput) -> None:
        self.inner = inner
        self.realtime = inner.realtime
        self.last_frame_at = time.monotonic()
        """``time.monotonic()`` when the agent's listener last took a frame."""

    async def _frames(self) -> AsyncIterator[AudioFrame]:
        async for frame in self.inner:
            self.last_frame_at = time.monotonic()
            yield frame

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()

    async def aclose(self) -> None:
        await self.inner.aclose()


def audio_path_check(
    heartbeat: HeartbeatInput,
    recovering_since: Callable[[], float | None],
    stall: float,
    device_grace: float,
    *,
    also_alive: Callable[[], float] | None = None,
) -> Callable[[], str | None]:
    """A check that returns None while the audio path is alive, else what is wrong. ``also_alive``: when
    another path (a room's audio) last reached an agent, which counts as alive too."""

    def check() -> str | None:
        now = time.monotonic()
        last = heartbeat.last_frame_at if also_alive is None else max(heartbeat.last_frame_at, also_alive())
        quiet = now - last
        if quiet <= stall:
            return None
        since = recovering_since()
        if since is not None and now - since < device_grace:
            return None
        if since is not None:
            return f"microphone unavailable for {now - since:.0f} s"
        return f"no audio reached the agent for {quiet:.1f} s"

    return check


class Watchdog:
    """Sends WATCHDOG=1 every ``interval / PINGS_PER_INTERVAL`` seconds while ``check()`` finds nothing wrong."""

    def __init__(self, notifier: Notifier, interval: float, check: Callable[[], str | None]) -> None:
        self._notifier = notifier
        self._period = interval / PINGS_PER_INTERVAL
        self._check = check
        self.pings = 0
        self.problem: str | None = None
        """What stopped the pings (None while they flow)."""

    async def run(self) -> None:
        while True:
            problem = self._check()
            if problem is None:
                if self.problem is not None:
                    logger.warning("audio path alive again: watchdog fed", extra={"was": self.problem})
                self._notifier.watchdog()
                self.pings += 1
            elif problem != self.problem:
                logger.error("audio path stalled: watchdog not fed", extra={"problem": problem})
                self._notifier.status(f"stalled: {problem}")
            self.problem = problem
            await asyncio.sleep(self._period)
