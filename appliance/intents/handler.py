"""Answering a local intent: its effect (a timer set, the volume changed) and the words to speak."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from appliance.intents import speech
from appliance.intents.grammar import Intent, IntentKind
from appliance.intents.timers import TimerClock, TimerDurationError, TooManyTimersError
from appliance.intents.volume import Mixer


@dataclass(frozen=True)
class IntentAnswer:
    kind: IntentKind
    say: str
    """What to speak ("" for nothing: after a stop, or a mute nobody could hear)."""
    stop: bool = False
    """Silence what is playing and go back to waiting for the wake word."""


class Calls(Protocol):
    """Calls through a room (the LiveKit bridge's relay mode): each returns what to say."""

    async def start_call(self, room: str | None) -> str: ...

    async def hang_up(self) -> str: ...


def local_now() -> datetime:
    """Now, in the local time zone."""
    return datetime.now().astimezone()


class IntentHandler:
    """Carries out local intents with the timers and the mixer it is given."""

    def __init__(self, timers: TimerClock, mixer: Mixer, *, now: Callable[[], datetime] = local_now) -> None:
        """``now``: an aware datetime in the local time zone (what "what time is it" answers)."""
        self.timers = timers
        self.mixer = mixer
        self.now = now
        self.calls: Calls | None = None
        """Who places calls ("call the kitchen", "hang up"); None: those go to the LLM like any request."""

    async def handle(self, intent: Intent, *, last_reply: str | None) -> IntentAnswer | None:
        """Do what ``intent`` asks; ``last_reply`` is what "say that again" repeats. None: not for this
        device after all (a call on a device without calls): the LLM answers it."""
        kind = intent.kind
        match kind:
            case IntentKind.CALL | IntentKind.HANG_UP:
                if self.calls is None:
                    return None
                if kind is IntentKind.CALL:
                    return IntentAnswer(kind, await self.calls.start_call(intent.label))
                return IntentAnswer(kind, await self.calls.hang_up())
            case IntentKind.STOP:
                return IntentAnswer(kind, "", stop=True)
            case IntentKind.REPEAT:
                return IntentAnswer(kind, last_reply or speech.NOTHING_SAID)
            case IntentKind.TIME:
                return IntentAnswer(kind, speech.say_time(self.now()))
            case IntentKind.DATE:
                return IntentAnswer(kind, speech.say_date(self.now()))
            case IntentKind.TIMER_SET | IntentKind.TIMER_LEFT | IntentKind.TIMER_CANCEL:
                return IntentAnswer(kind, await self._timer(intent))
            case _:
                return IntentAnswer(kind, await self._volume(intent))

    async def _timer(self, intent: Intent) -> str:
        if intent.kind is IntentKind.TIMER_SET:
            if intent.seconds is None:
                raise ValueError("a timer_set intent needs its seconds")
            try:
                return speech.say_timer_set(await self.timers.add(intent.seconds, intent.label))
            except TooManyTimersError:
                return speech.say_too_many(self.timers.max_timers)
            except TimerDurationError:
                if intent.seconds > self.timers.max_seconds:
                    return speech.say_too_long(self.timers.max_seconds)
                return speech.say_too_short()
        if intent.kind is IntentKind.TIMER_CANCEL:
            return speech.say_cancelled(await self.timers.cancel(intent.label, seconds=intent.seconds), intent.label)
        now = self.timers.now()
        label = (intent.label or "").lower()
        left = [(t, t.remaining(now)) for t in self.timers.left() if not label or (t.label or "").lower() == label]
        return speech.say_timers_left(left, intent.label)

    async def _volume(self, intent: Intent) -> str:
        was = self.mixer.level
        match intent.kind:
            case IntentKind.VOLUME_UP:
                level = await self.mixer.up()
            case IntentKind.VOLUME_DOWN:
                level = await self.mixer.down()
            case IntentKind.UNMUTE:
                level = await self.mixer.unmute()
            case IntentKind.VOLUME_SET:
                if intent.level is None:
                    raise ValueError("a volume_set intent needs its level")
                level = await self.mixer.set(intent.level)
            case _:
                raise ValueError(f"no local answer for intent {intent.kind}")
        return "" if level == 0 else speech.say_volume(level, was=was)
