"""The words of local intents: times, dates and durations as they are said."""

from __future__ import annotations

from datetime import datetime

import pytest

from appliance.intents import speech
from appliance.intents.timers import Timer


def timer(seconds: float, label: str | None = None) -> Timer:
    return Timer("timer_test", seconds, 1000.0, 1000.0 + seconds, label)


@pytest.mark.parametrize(
    ("hour", "minute", "said"),
    [
        (15, 42, "It's 3:42 PM."),
        (15, 5, "It's 3:05 PM."),
        (15, 0, "It's 3 PM."),
        (0, 7, "It's 12:07 AM."),
        (12, 0, "It's 12 PM."),
        (9, 30, "It's 9:30 AM."),
    ],
)
def test_the_time_is_said_on_a_12_hour_clock(hour: int, minute: int, said: str) -> None:
    assert speech.say_time(datetime(2026, 12, 3, hour, minute)) == said


def test_the_date_is_said_with_its_weekday() -> None:
    assert speech.say_date(datetime(2026, 12, 3, 9, 0)) == "Today is Thursday, December 3."
    assert speech.say_date(datetime(2027, 1, 1)) == "Today is Friday, January 1."


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (300, "5 minutes"),
        (60, "1 minute"),
        (90, "1 minute and 30 seconds"),
        (5400, "1 hour and 30 minutes"),
        (3661, "1 hour, 1 minute and 1 second"),
        (7200, "2 hours"),
        (1, "1 second"),
        (0, "0 seconds"),
        (149.6, "2 minutes and 30 seconds"),
    ],
)
def test_durations_are_said_in_hours_minutes_and_seconds(seconds: float, said: str) -> None:
    assert speech.say_duration(seconds) == said


def test_time_left_is_exact_when_short_and_to_the_minute_when_long() -> None:
    assert speech.say_left(299.2) == "5 minutes"
    assert speech.say_left(0.3) == "1 second"
    assert speech.say_left(1490) == "about 25 minutes"


def test_a_timer_is_named_by_its_label_or_its_duration() -> None:
    assert speech.say_timer_set(timer(300)) == "Timer set for 5 minutes."
    assert speech.say_timer_set(timer(480, "pasta")) == "Pasta timer set for 8 minutes."
    assert speech.say_timer_done(timer(300), 0.2) == "Your 5 minute timer is done."
    assert speech.say_timer_done(timer(300, "pasta"), 0.0) == "Your pasta timer is done."
    assert speech.say_timer_done(timer(5400), 0.0) == "Your 1 hour 30 minute timer is done."


def test_a_timer_that_rang_late_says_when_it_finished() -> None:
    assert speech.say_timer_done(timer(300), 125) == "Your 5 minute timer finished 2 minutes ago."
    assert speech.say_timer_done(timer(300, "pasta"), 40) == "Your pasta timer finished 40 seconds ago."
    assert speech.say_timer_done(timer(60), 3 * 86400 + 100) == "Your 1 minute timer finished 3 days ago."


def test_timers_left_and_cancelled() -> None:
    assert speech.say_timers_left([]) == "There's no timer running."
    assert speech.say_timers_left([], "pasta") == "There's no pasta timer."
    assert speech.say_timers_left([(timer(300), 240)]) == "4 minutes left."
    assert speech.say_timers_left([(timer(480, "pasta"), 61)]) == "1 minute and 1 second left on the pasta timer."
    both = speech.say_timers_left([(timer(480, "pasta"), 61), (timer(600), 1200)])
    assert both == "You have 2 timers. Pasta timer: 1 minute and 1 second left. 10 minute timer: about 20 minutes left."
    assert speech.say_cancelled([timer(300, "pasta")]) == "Pasta timer cancelled."
    assert speech.say_cancelled([timer(300)]) == "Timer cancelled."
    assert speech.say_cancelled([timer(300), timer(60)]) == "2 timers cancelled."
    assert speech.say_cancelled([], "eggs") == "There's no eggs timer."
