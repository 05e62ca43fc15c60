"""The threshold rules: monotonic in the room, capped by the voice, explained; and the false-trigger counts."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from appliance.calibrate.thresholds import (
    GATE_FLOOR,
    GATE_MAX,
    PHRASE_MARGIN,
    VAD_FLOOR,
    VAD_MARGIN,
    WAKE_FLOOR,
    WAKE_MARGIN,
    WAKE_RANGE,
    choose_gate,
    choose_vad,
    choose_wake,
    room_reach,
    speech_reach,
    vad_activity,
    wake_triggers,
)
from appliance.config import parse_config
from appliance.vad.base import VADSettings

ROOMS = np.linspace(0.0, 1.0, 201)


@pytest.mark.parametrize("speech", [None, 1.0, 0.9, 0.6, 0.3])
def test_a_room_that_reaches_higher_never_gets_a_lower_vad_threshold(speech: float | None) -> None:
    chosen = [choose_vad(0.5, room, speech).new for room in ROOMS]
    assert all(b >= a for a, b in itertools.pairwise(chosen))
    assert all(0.05 <= t <= 0.95 for t in chosen)


@pytest.mark.parametrize("phrase", [None, 0.2, 0.95, 0.7, 0.5])
def test_a_room_that_scores_higher_never_gets_a_lower_wake_threshold(phrase: float | None) -> None:
    chosen = [choose_wake(0.5, room, "hey_jarvis", phrase).new for room in ROOMS]
    assert all(b >= a for a, b in itertools.pairwise(chosen))
    assert all(WAKE_RANGE[0] <= t <= WAKE_RANGE[1] for t in chosen)


def test_a_quiet_room_keeps_the_vad_default_and_a_busy_one_raises_it() -> None:
    quiet = choose_vad(0.5, 0.02, 1.0)
    assert quiet.new == VAD_FLOOR and "below the floor" in quiet.reason and quiet.warning is None
    busy = choose_vad(0.5, 0.4, 1.0)
    assert busy.new == pytest.approx(0.4 + VAD_MARGIN)
    assert "room sound reaches 0.40" in busy.reason and "your voice reaches 1.00" in busy.reason


def test_the_vad_threshold_stays_below_a_faint_voice() -> None:
    faint = choose_vad(0.5, 0.05, 0.45)
    assert faint.new == pytest.approx(0.35) and "kept 0.1 below it" in faint.reason
    assert faint.warning is None


def test_room_and_voice_that_overlap_are_split_and_warned_about() -> None:
    both = choose_vad(0.5, 0.9, 0.95)
    assert 0.92 <= both.new <= 0.93 and both.warning and "overlap" in both.warning


def test_the_wake_threshold_follows_the_room_within_its_range() -> None:
    quiet = choose_wake(0.7, 0.0, "hey_jarvis", None)
    assert quiet.new == WAKE_FLOOR and "below the floor" in quiet.reason
    assert choose_wake(0.5, 0.35, "hey_jarvis", None).new == pytest.approx(0.35 + WAKE_MARGIN)
    assert choose_wake(0.5, 0.8, "hey_jarvis", None).new == WAKE_RANGE[1]
    why = choose_wake(0.5, 0.2, "alexa", 0.1).reason
    assert "scored at most 0.20 (alexa)" in why and "not recognised (best score 0.10)" in why


def test_a_recognised_wake_phrase_caps_the_wake_threshold() -> None:
    faint = choose_wake(0.5, 0.0, "hey_jarvis", 0.45)
    assert faint.new == pytest.approx(0.45 - PHRASE_MARGIN)
    assert "your wake phrase scored 0.45, so kept 0.1 below it" in faint.reason
    assert faint.warning and "only 0.10 above the threshold 0.35" in faint.warning  # heard now, missed from afar
    clear = choose_wake(0.5, 0.0, "hey_jarvis", 0.95)
    assert clear.new == WAKE_FLOOR and clear.warning is None  # a clear phrase leaves room to spare
    assert choose_wake(0.5, 0.0, "hey_jarvis", 0.6).warning  # 0.1 above the default threshold: thin
    clash = choose_wake(0.5, 0.6, "hey_jarvis", 0.62)
    assert clash.warning and "false wakes" in clash.warning


def test_the_gate_rises_with_the_room_but_stays_below_the_vad() -> None:
    assert choose_gate(0.15, 0.02, 0.5).new == GATE_FLOOR
    assert choose_gate(0.15, 0.3, 0.7).new == pytest.approx(0.35)
    assert choose_gate(0.15, 0.3, 0.4).new == pytest.approx(0.3)
    assert choose_gate(0.15, 0.9, 0.95).new == GATE_MAX


def test_every_choice_is_a_value_the_config_accepts() -> None:
    for room in ROOMS:
        vad = choose_vad(0.5, room, 0.8)
        values = {
            "vad": {"threshold": vad.new},
            "wake": {"threshold": choose_wake(0.5, room, "hey_jarvis", 0.9).new},
            "agent": {"wake_gate_threshold": choose_gate(0.15, room, vad.new).new},
        }
        parse_config(values, env={})


def test_room_and_speech_reach() -> None:
    room = np.concatenate([np.full(99, 0.01), [0.9]])
    assert room_reach(room) == pytest.approx(0.019, abs=0.001)  # one loud window in a hundred barely counts
    voiced = np.array([True, True, True, False])
    assert speech_reach(np.array([0.9, 1.0, 0.2, 0.0]), voiced) == pytest.approx(0.9)
    assert speech_reach(np.array([0.9]), np.array([False])) is None


def test_vad_activity_follows_the_vads_own_rules() -> None:
    """Starts need ``min_speech_duration`` above the threshold; an utterance ends after ``min_silence_duration``."""
    settings = VADSettings(min_speech_duration=0.1, min_silence_duration=0.2)
    blip = [0.6] * 3  # 0.096 s: too short to start
    word = [0.6] * 5
    pause = [0.0] * 3  # 0.096 s: the utterance goes on
    gap = [0.0] * 10  # 0.32 s: it ends
    p = np.array(blip + gap + word + pause + word + gap + word + gap)
    starts, seconds = vad_activity(p, 0.5, settings, 0.032)
    assert starts == 2
    assert seconds == pytest.approx((5 + 3 + 5 + 5) * 0.032)
    assert vad_activity(p, 0.7, settings, 0.032) == (0, 0.0)
    assert vad_activity(np.full(10, 0.45), 0.5, settings, 0.032)[0] == 0
    # hysteresis: once speaking, dipping just under the threshold does not count as silence
    assert vad_activity(np.array(word + [0.4] * 20), 0.5, settings, 0.032) == (1, pytest.approx(25 * 0.032))


def test_wake_triggers_respect_patience_and_refractory() -> None:
    scores = np.array([0.0, 0.6, 0.7, 0.0, 0.8, 0.0, 0.0, 0.0, 0.9])
    assert wake_triggers(scores, 0.5, 1, 0.0, 0.08) == 4
    assert wake_triggers(scores, 0.5, 1, 0.5, 0.08) == 2  # the second and third fall in the refractory time
    assert wake_triggers(scores, 0.5, 2, 0.0, 0.08) == 1
    assert wake_triggers(scores, 0.95, 1, 0.0, 0.08) == 0
