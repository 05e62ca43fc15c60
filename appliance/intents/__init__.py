"""Local intents: stop, volume, time, date, kitchen timers and "say that again", recognized by a small grammar
on the transcript and answered without the LLM."""

from appliance.intents.grammar import Intent, IntentKind, match
from appliance.intents.handler import IntentAnswer, IntentHandler
from appliance.intents.timers import Timer, TimerClock, TimerError, TimerStore
from appliance.intents.volume import Backend, Mixer

__all__ = [
    "Backend",
    "Intent",
    "IntentAnswer",
    "IntentHandler",
    "IntentKind",
    "Mixer",
    "Timer",
    "TimerClock",
    "TimerError",
    "TimerStore",
    "match",
]
