"""Local intents answered end to end: the transcript through the grammar to the handler, which sets timers on
a real store and changes the level of a real (software) mixer, and gives the words to speak."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from appliance.intents import Intent, IntentAnswer, IntentHandler, IntentKind, Mixer, TimerClock, TimerStore, match
from appliance.intents.timers import Timer

BERLIN_WINTER = timezone(timedelta(hours=1))
NOW = datetime(2026, 12, 3, 15, 42, 10, tzinfo=BERLIN_WINTER)
WALL = NOW.timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = WALL

    def __call__(self) -> float:
        return self.now


async def nothing(timer: Timer, late_by: float) -> None:
    return None


def with_handler(tmp_path: Path, body: Callable[[IntentHandler, Clock], Awaitable[None]], **clock_options: int) -> None:
    """Run ``body`` with a handler on a fresh timer store and a software mixer at 50."""

    async def go() -> None:
        store = TimerStore(tmp_path / "timers.db")
        clock = Clock()
        timers = TimerClock(store, nothing, clock=clock, nap=0.005, **clock_options)
        mixer = Mixer(tmp_path, pactl=None, amixer=None)
        await mixer.restore()
        await mixer.set(50)
        await timers.start()
        try:
            await body(IntentHandler(timers, mixer, now=lambda: NOW), clock)
        finally:
            await timers.close()
            store.close()

    asyncio.run(go())


async def ask(handler: IntentHandler, transcript: str, last_reply: str | None = None) -> IntentAnswer:
    intent = match(transcript)
    assert intent is not None, transcript
    answer = await handler.handle(intent, last_reply=last_reply)
    assert answer is not None, transcript
    return answer


def test_time_and_date_are_said_in_local_time(tmp_path: Path) -> None:
    async def body(handler: IntentHandler, clock: Clock) -> None:
        assert (await ask(handler, "What time is it?")).say == "It's 3:42 PM."
        assert (await ask(handler, "What's the date?")).say == "Today is Thursday, December 3."

    with_handler(tmp_path, body)


def test_stop_silences_and_says_nothing(tmp_path: Path) -> None:
    async def body(handler: IntentHandler, clock: Clock) -> None:
        answer = await ask(handler, "Stop.")
        assert answer == IntentAnswer(IntentKind.STOP, "", stop=True)
        assert not (await ask(handler, "What time is it?")).stop

    with_handler(tmp_path, body)


def test_repeat_says_the_last_reply_or_that_there_was_none(tmp_path: Path) -> None:
    async def body(handler: IntentHandler, clock: Clock) -> None:
        assert (await ask(handler, "Say that again.", "Paris is the capital of France.")).say == (
            "Paris is the capital of France."
        )
        assert (await ask(handler, "Say that again.")).say == "I haven't said anything yet."

    with_handler(tmp_path, body)


def test_a_timer_is_set_reported_and_cancelled(tmp_path: Path) -> None:
    async def body(handler: IntentHandler, clock: Clock) -> None:
        assert (await ask(handler, "How much time is left?")).say == "There's no timer running."
        assert (await ask(handler, "Set a timer for five minutes.")).say == "Timer set for 5 minutes."
        assert (await ask(handler, "Start a pasta timer for 8 minutes.")).say == "Pasta timer set for 8 minutes."
        clock.now += 60
        assert (await ask(handler, "How much time is left on the pasta timer?")).say == (
            "7 minutes left on the pasta timer."
        )
        assert (await ask(handler, "How much time is left?")).say == (
            "You have 2 timers. 5 minute timer: 4 minutes left. Pasta timer: 7 minutes left."
        )
        assert (await ask(handler, "Cancel the pasta timer.")).say == "Pasta timer cancelled."
        assert (await ask(handler, "Cancel the pasta timer.")).say == "There's no pasta timer."
        assert (await ask(handler, "How much longer?")).say == "4 minutes left."
        assert (await ask(handler, "Cancel the timer.")).say == "Timer cancelled."
        assert handler.timers.left() == []

    with_handler(tmp_path, body)


def test_a_timer_over_24_hours_or_one_too_many_is_refused_in_words(tmp_path: Path) -> None:
    async def body(handler: IntentHandler, clock: Clock) -> None:
        assert (await ask(handler, "Set a timer for 48 hours.")).say == "I can only set timers of up to 24 hours."
        assert (await ask(handler, "Set a timer for 0 minutes.")).say == "A timer needs a duration longer than that."
        await ask(handler, "Set a timer for 1 minute.")
        await ask(handler, "Set a timer for 2 minutes.")
        assert (await ask(handler, "Set a timer for 3 minutes.")).say == "You already have 2 timers. Cancel one first."
        assert len(handler.timers.left()) == 2

    with_handler(tmp_path, body, max_timers=2)


def test_the_volume_steps_is_set_and_is_muted_without_a_word(tmp_path: Path) -> None:
    async def body(handler: IntentHandler, clock: Clock) -> None:
        assert (await ask(handler, "Louder.")).say == "Volume 60."
        assert (await ask(handler, "Turn it down.")).say == "Volume 50."
        assert (await ask(handler, "Set the volume to 8.")).say == "Volume 80."
        assert (await ask(handler, "Max volume.")).say == "Volume 100."
        assert (await ask(handler, "Volume up.")).say == "The volume is already at 100."
        assert (await ask(handler, "Mute.")).say == ""
        assert handler.mixer.level == 0 and handler.mixer.gain == 0.0
        assert (await ask(handler, "Unmute.")).say == "Volume 100."

    with_handler(tmp_path, body)


def test_an_intent_missing_its_value_is_a_programming_error(tmp_path: Path) -> None:
    async def body(handler: IntentHandler, clock: Clock) -> None:
        with pytest.raises(ValueError, match="needs its seconds"):
            await handler.handle(Intent(IntentKind.TIMER_SET), last_reply=None)
        with pytest.raises(ValueError, match="needs its level"):
            await handler.handle(Intent(IntentKind.VOLUME_SET), last_reply=None)

    with_handler(tmp_path, body)


class Phone:
    """The calls a relay places: what was asked, and the words the bridge gives back."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    async def start_call(self, room: str | None) -> str:
        self.asked.append(room)
        return f"Calling {room or 'the room'}."

    async def hang_up(self) -> str:
        self.asked.append("hang up")
        return "The call has ended."


def test_calls_go_to_the_bridge_and_to_the_llm_on_a_device_without_calls(tmp_path: Path) -> None:
    async def body(handler: IntentHandler, clock: Clock) -> None:
        intent = match("Call the kitchen.")
        assert intent is not None
        assert await handler.handle(intent, last_reply=None) is None  # no calls here: the LLM answers it
        phone = Phone()
        handler.calls = phone
        assert (await ask(handler, "Call the kitchen.")).say == "Calling kitchen."
        assert (await ask(handler, "Hang up.")).say == "The call has ended."
        assert phone.asked == ["kitchen", "hang up"]

    with_handler(tmp_path, body)
