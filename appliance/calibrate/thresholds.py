"""Choosing thresholds from what was measured: room sound sets the floor, the user's voice the ceiling.

Every rule is monotonic in the room: a room that scores higher never gets a lower threshold.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from appliance.agent.options import SessionOptions
from appliance.vad.base import VADSettings
from appliance.wake.base import WakeSettings

VAD_FLOOR = VADSettings().threshold
"""The VAD threshold is never set below Silero's own default because of a quiet room (only for a faint voice)."""
VAD_MARGIN = 0.3
"""Added to what the room reaches (its 99th percentile): a few seconds of a room do not show its rarest sounds."""
VAD_RANGE = (0.05, 0.95)
"""What the config allows."""
SPEECH_MARGIN = 0.1
"""The threshold stays this far below what the user's voice reaches (its median over the voiced windows)."""
WAKE_FLOOR = WakeSettings().threshold
"""The wake threshold is never set below openWakeWord's default because of a quiet room (only for a faint phrase):
a few quiet seconds say nothing about the talk and television the device will hear later."""
WAKE_MARGIN = 0.3
"""Added to the highest wake score on room sound: a few seconds of a room do not show its rarest sounds."""
WAKE_RANGE = (0.3, 0.9)
"""Sane wake thresholds: lower fires on ordinary talk, higher misses a wake word said from across the room."""
PHRASE_MARGIN = 0.1
"""The wake threshold stays this far below the score of the user's own wake phrase, when it was heard."""
THIN_MARGIN = 0.15
"""A wake phrase scoring less than this above the threshold is heard today and missed said farther away."""
PHRASE_RECOGNISED = WAKE_RANGE[0]
"""A wake phrase scoring at least this counts as heard (other speech scores near 0 once the model is warm)."""
GATE_FLOOR = SessionOptions().wake_gate_threshold
GATE_MARGIN = 0.05
GATE_MAX = 0.5
"""The gate asks no more of a sound than the default VAD threshold asks of speech: a soft wake word opens it."""
GATE_BELOW_VAD = 0.1
"""The wake model must wake up before the VAD calls it speech: the gate stays this far below the VAD threshold."""
ROOM_PERCENTILE = 99


@dataclass(frozen=True)
class Choice:
    """One config value calibration sets, and why."""

    key: str
    """``section.key`` in the config."""
    old: float
    new: float
    reason: str
    warning: str | None = None

    @property
    def section(self) -> str:
        return self.key.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.key.split(".", 1)[1]


def _round(value: float, low: float, high: float) -> float:
    return round(min(high, max(low, value)), 2)


def room_reach(probabilities: np.ndarray) -> float:
    """What room sound reaches on the VAD: the 99th percentile of its window probabilities."""
    return float(np.percentile(probabilities, ROOM_PERCENTILE)) if probabilities.size else 0.0


def speech_reach(probabilities: np.ndarray, voiced: np.ndarray) -> float | None:
    """What the user's voice reaches on the VAD: the median probability over the voiced windows."""
    n = min(probabilities.size, voiced.size)
    picked = probabilities[:n][voiced[:n]]
    return float(np.median(picked)) if picked.size else None


def choose_vad(old: float, room: float, speech: float | None) -> Choice:
    """``room`` + margin, at least the default; kept below what ``speech`` reaches; the middle if they overlap."""
    low, high = VAD_RANGE
    wanted = max(VAD_FLOOR, room + VAD_MARGIN)
    why = f"room sound reaches {room:.2f} (p{ROOM_PERCENTILE} of Silero's speech probability) + margin {VAD_MARGIN}"
    if wanted == VAD_FLOOR:
        why += f", below the floor {VAD_FLOOR}"
    if speech is None:
        return Choice("vad.threshold", old, _round(wanted, low, high), why + "; no speech measured")
    why += f"; your voice reaches {speech:.2f}"
    warning = (
        f"room sound ({room:.2f}) and your voice ({speech:.2f}) overlap on the VAD: expect false starts or"
        " missed words; quieten the room (a TV or radio?) or move the device closer, then calibrate again"
    )
    return _below_user("vad.threshold", old, wanted, room, speech, SPEECH_MARGIN, VAD_RANGE, why, warning)


def choose_wake(old: float, room_peak: float, word: str, phrase_peak: float | None) -> Choice:
    """Highest room score + margin, at least the default; kept below the user's wake phrase when it was heard."""
    low, high = WAKE_RANGE
    wanted = max(WAKE_FLOOR, room_peak + WAKE_MARGIN)
    why = f"room sound scored at most {room_peak:.2f} ({word}) + margin {WAKE_MARGIN}"
    if wanted == WAKE_FLOOR:
        why += f", below the floor {WAKE_FLOOR}"
    if phrase_peak is None or phrase_peak < PHRASE_RECOGNISED:
        heard = "" if phrase_peak is None else f" (best score {phrase_peak:.2f})"
        why += f"; your wake phrase was not recognised{heard}, so the room alone decides"
        return Choice("wake.threshold", old, _round(wanted, low, high), why)
    why += f"; your wake phrase scored {phrase_peak:.2f}"
    warning = (
        f"room sound ({room_peak:.2f}) scores close to your wake phrase ({phrase_peak:.2f}): expect false wakes;"
        " quieten the room or say the wake word closer to the device, then calibrate again"
    )
    choice = _below_user("wake.threshold", old, wanted, room_peak, phrase_peak, PHRASE_MARGIN, WAKE_RANGE, why, warning)
    margin = phrase_peak - choice.new
    if choice.warning is None and margin < THIN_MARGIN:
        thin = (
            f"your wake phrase scored {phrase_peak:.2f}, only {margin:.2f} above the threshold {choice.new:.2f}: said"
            " farther away or more softly it will be missed; say it as you will from across the room, then calibrate"
            " again"
        )
        choice = dataclasses.replace(choice, warning=thin)
    return choice


def _below_user(
    key: str,
    old: float,
    wanted: float,
    room: float,
    user: float,
    margin: float,
    allowed: tuple[float, float],
    why: str,
    overlap: str,
) -> Choice:
    """``wanted`` if it stays ``margin`` below what the user reached; else just below the user, or halfway
    between room and user (with the ``overlap`` warning) when the two are too close for both."""
    low, high = allowed
    cap = user - margin
    if wanted <= cap:
        return Choice(key, old, _round(wanted, low, high), why)
    if cap > room:
        return Choice(key, old, _round(cap, low, high), why + f", so kept {margin} below it")
    middle = (room + user) / 2
    return Choice(key, old, _round(middle, low, high), why + ", overlapping: set between them", overlap)


def choose_gate(old: float, room: float, vad_threshold: float) -> Choice:
    """The VAD level that wakes the wake-word model: above the room (it sleeps through steady noise), below the VAD."""
    ceiling = max(0.01, min(GATE_MAX, vad_threshold - GATE_BELOW_VAD))
    wanted = min(max(GATE_FLOOR, room + GATE_MARGIN), ceiling)
    why = f"room sound reaches {room:.2f} + margin {GATE_MARGIN}"
    if wanted == GATE_FLOOR:
        why += f", below the default {GATE_FLOOR}"
    elif wanted == ceiling:
        why += f", capped at {ceiling:.2f} (at most {GATE_MAX}, and {GATE_BELOW_VAD} below the VAD threshold)"
    return Choice("agent.wake_gate_threshold", old, _round(wanted, 0.01, 0.99), why)


def vad_activity(
    probabilities: np.ndarray, threshold: float, settings: VADSettings, window: float
) -> tuple[int, float]:
    """Utterances the VAD would start, and seconds it would call speech, at ``threshold`` (its own rules)."""
    s = dataclasses.replace(settings, threshold=threshold)
    starts, speech, run, silence, speaking = 0, 0.0, 0.0, 0.0, False
    for x in probabilities:
        if not speaking:
            run = run + window if x >= s.threshold else 0.0
            if run >= s.min_speech_duration:
                speaking, starts, speech, silence = True, starts + 1, speech + run, 0.0
            continue
        if x < s.deactivation_threshold:
            silence += window
        else:
            speech, silence = speech + silence + window, 0.0
        if silence >= s.min_silence_duration:
            speaking, run = False, 0.0
    return starts, speech


def wake_triggers(scores: np.ndarray, threshold: float, patience: int, refractory: float, chunk: float) -> int:
    """How often the wake word would fire on ``scores`` (per 80 ms chunk), as the detector decides."""
    count = streak = 0
    last: float | None = None
    for i, score in enumerate(scores):
        streak = streak + 1 if score >= threshold else 0
        now = (i + 1) * chunk
        if streak >= patience and (last is None or now - last >= refractory):
            count += 1
            last = now
            streak = 0
    return count
