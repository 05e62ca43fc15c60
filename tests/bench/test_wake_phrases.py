"""The wake word's margin in the bench, on SYNTHETIC Piper wake phrases with the real wake model."""

from __future__ import annotations

import pytest

from appliance.bench import wake_phrases as wm
from appliance.engines import Models


@pytest.fixture
def one_phrase(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wm, "RATES", (1.0,))
    monkeypatch.setattr(wm, "PHRASES", ("Hey Jarvis.",))


def test_a_clear_phrase_clears_the_threshold_and_nothing_is_warned(models: Models, jarvis, one_phrase) -> None:  # type: ignore[no-untyped-def]
    report = wm.wake_margin(models, jarvis, 0.5)
    assert report["near, quiet room"]["missed"] == 0 and report["near, quiet room"]["score_min"] > 0.9
    assert report["warning"] is None
    # the next room in a busy room is where the model gives up first: its score is the lowest
    assert report["next room, busy room"]["score_min"] < report["near, quiet room"]["score_min"]


def test_a_threshold_close_to_the_phrases_scores_is_warned_about(models: Models, jarvis, one_phrase) -> None:  # type: ignore[no-untyped-def]
    near = wm.wake_margin(models, jarvis, 0.5)["near, quiet room"]["score_min"]
    report = wm.wake_margin(models, jarvis, round(near - 0.05, 3))
    assert report["near, quiet room"]["thin_margin"] == 1
    assert report["warning"] and "near, quiet room: 0 missed, 1 within 0.15" in report["warning"]
