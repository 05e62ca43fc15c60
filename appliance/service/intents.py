"""The device's local intents in the daemon: timers kept with the conversation record, the output volume kept
in the state directory, and a timer that rings through the session (a tone, then the words)."""

from __future__ import annotations

import logging
from pathlib import Path

from appliance.agent import AgentSession
from appliance.audio.earcon import Earcon
from appliance.intents import speech
from appliance.intents.handler import IntentHandler
from appliance.intents.timers import Timer, TimerClock, TimerError, TimerStore
from appliance.intents.volume import Mixer
from appliance.service.record import RECORD_FILE

logger = logging.getLogger(__name__)


class DeviceIntents:
    """Built before the session starts; ``start()`` restores the volume and the timers that are still due."""

    def __init__(self, state_dir: Path, session: AgentSession) -> None:
        self.session = session
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.store = TimerStore(state_dir / RECORD_FILE)
        self.timers = TimerClock(self.store, self._ring)
        self.mixer = Mixer(state_dir)
        self.handler = IntentHandler(self.timers, self.mixer)

    @classmethod
    def open(cls, state_dir: Path, session: AgentSession) -> DeviceIntents | None:
        """None (and one log line) when the state directory cannot hold the timers: the LLM answers all."""
        try:
            return cls(state_dir, session)
        except (OSError, TimerError) as exc:
            logger.error("local intents off: no place for the timers", extra={"dir": str(state_dir), "error": str(exc)})
            return None

    async def start(self) -> None:
        await self.mixer.restore()
        await self.timers.start()  # a timer that fell due while the daemon was down rings now

    async def _ring(self, timer: Timer, late_by: float) -> None:
        logger.info("timer rang", extra={"timer": timer.id, "seconds": timer.seconds, "late_by": round(late_by, 1)})
        handle = self.session.announce(speech.say_timer_done(timer, late_by), Earcon.TIMER)
        await handle.wait_for_playout()

    async def aclose(self) -> None:
        await self.timers.close()
        self.store.close()
