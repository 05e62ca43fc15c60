"""The level meter: a redrawn line on a terminal, an occasional plain line in a log."""

from __future__ import annotations

import io

import pytest

from appliance.calibrate import meter as meter_module
from appliance.calibrate.meter import LevelMeter, bar


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(meter_module.time, "monotonic", fake)
    return fake


def test_the_bar_spans_minus_80_to_0_dbfs() -> None:
    assert bar(-80.0, 10) == "[----------]" and bar(-200.0, 10) == "[----------]"
    assert bar(-40.0, 10) == "[#####-----]"
    assert bar(0.0, 10) == bar(6.0, 10) == "[##########]"


def test_a_terminal_gets_one_line_redrawn_with_the_loudest_level_and_the_time_left(clock: Clock) -> None:
    out = io.StringIO()
    m = LevelMeter(out, tty=True)
    m.phase("room sound", 5.0)
    for level in (-50.0, -20.0, -60.0):
        clock.now += 0.04
        m.update(level)
    text = out.getvalue()
    assert text.startswith("\r") and "\n" not in text
    assert "-20.0 dBFS" in text and "4.9 s left" in text
    m.stop()
    assert out.getvalue().endswith("\r\x1b[K")  # the line is wiped before anything else is printed


def test_a_log_gets_a_plain_line_about_once_a_second_and_nothing_between_phases(clock: Clock) -> None:
    out = io.StringIO()
    m = LevelMeter(out, tty=False)
    m.update(-30.0)
    assert out.getvalue() == ""  # no phase: no meter
    m.phase("speech", 3.0)
    for _ in range(100):  # 3.2 s of 32 ms blocks
        clock.now += 0.032
        m.update(-30.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3 and all(line.startswith("level: speech") and "\r" not in line for line in lines)
    m.stop()
    clock.now += 2
    m.update(-30.0)
    assert len(out.getvalue().splitlines()) == 3
