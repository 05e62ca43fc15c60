"""The words a local intent answers with: plain sentences for the TTS ("It's 3:42 PM.", "Timer set for 5
minutes.", "Your pasta timer is done.")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from appliance.intents.timers import Timer

NO_TIMER = "There's no timer running."
NOTHING_SAID = "I haven't said anything yet."
LATE_AFTER = 5.0
"""Seconds late a timer may ring and still be "done" rather than "finished ... ago"."""
EXACT_BELOW = 600.0
"""Time left under this is said to the second; above it, to the minute."""

_UNITS = ((3600, "hour"), (60, "minute"), (1, "second"))
_AGO = ((86400, "day"), *_UNITS)


def say_time(now: datetime) -> str:
    """ "It's 3:42 PM." ("It's 3 PM." on the hour)."""
    hour = now.hour % 12 or 12
    half = "AM" if now.hour < 12 else "PM"
    return f"It's {hour} {half}." if now.minute == 0 else f"It's {hour}:{now.minute:02d} {half}."


def say_date(now: datetime) -> str:
    """ "Today is Thursday, December 3." """
    return f"Today is {now:%A}, {now:%B} {now.day}."


def say_duration(seconds: float) -> str:
    """ "5 minutes", "1 hour and 30 minutes", "1 minute and 30 seconds" (to the nearest second)."""
    parts = [f"{n} {unit}{'' if n == 1 else 's'}" for n, unit in _split(round(seconds))]
    if not parts:
        return "0 seconds"
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def say_left(seconds: float) -> str:
    """Time left: to the second when it is short, to the minute when it is long ("about" then)."""
    if seconds < EXACT_BELOW:
        return say_duration(math.ceil(seconds))
    return f"about {say_duration(round(seconds / 60) * 60)}"


def say_ago(seconds: float) -> str:
    """How long ago something was, as roughly as that deserves: "40 seconds", "2 minutes", "3 hours", "2 days"."""
    size, unit = next(((size, unit) for size, unit in _AGO if seconds >= size), _AGO[-1])
    n = max(1, round(seconds / size))
    return f"{n} {unit}{'' if n == 1 else 's'}"


def timer_name(timer: Timer) -> str:
    """ "pasta timer", or by its duration: "5 minute timer", "1 hour 30 minute timer"."""
    if timer.label:
        return f"{timer.label} timer"
    return " ".join(f"{n} {unit}" for n, unit in _split(round(timer.seconds))) + " timer"


def say_timer_set(timer: Timer) -> str:
    """ "Timer set for 5 minutes." / "Pasta timer set for 8 minutes." """
    what = f"{timer.label} timer" if timer.label else "timer"
    return f"{_capital(what)} set for {say_duration(timer.seconds)}."


def say_timer_done(timer: Timer, late_by: float) -> str:
    """ "Your 5 minute timer is done." / "Your pasta timer finished 2 minutes ago." (it rang late: the daemon
    was not running when it was due)."""
    if late_by < LATE_AFTER:
        return f"Your {timer_name(timer)} is done."
    return f"Your {timer_name(timer)} finished {say_ago(late_by)} ago."


def say_timers_left(timers: Sequence[tuple[Timer, float]], label: str | None = None) -> str:
    """The timers with the time each has left (seconds), nearest first."""
    if not timers:
        return f"There's no {label} timer." if label else NO_TIMER
    if len(timers) == 1:
        timer, left = timers[0]
        where = f" on the {timer.label} timer" if timer.label else ""
        return f"{_capital(say_left(left))} left{where}."
    each = " ".join(f"{_capital(timer_name(t))}: {say_left(left)} left." for t, left in timers)
    return f"You have {len(timers)} timers. {each}"


def say_cancelled(timers: Sequence[Timer], label: str | None = None) -> str:
    """ "Timer cancelled." / "Pasta timer cancelled." / "2 timers cancelled." """
    if not timers:
        return f"There's no {label} timer." if label else NO_TIMER
    if len(timers) > 1:
        return f"{len(timers)} timers cancelled."
    return f"{_capital(timers[0].label + ' timer' if timers[0].label else 'timer')} cancelled."


def say_too_long(max_seconds: float) -> str:
    return f"I can only set timers of up to {say_duration(max_seconds)}."


def say_too_many(max_timers: int) -> str:
    return f"You already have {max_timers} timers. Cancel one first."


def say_too_short() -> str:
    return "A timer needs a duration longer than that."


def say_volume(level: int, *, was: int | None = None) -> str:
    """ "Volume 60." ("The volume is already at 100." when it could not go further)."""
    if was == level == 100:
        return "The volume is already at 100."
    return f"Volume {level}."


def _split(seconds: int) -> list[tuple[int, str]]:
    out = []
    for size, unit in _UNITS:
        n, seconds = divmod(seconds, size)
        if n:
            out.append((n, unit))
    return out


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
