"""How clearly the wake model hears its own phrase: scores of varied wake phrases against the threshold.

The phrases are SYNTHETIC (the Piper voice at two speaking rates, four phrasings, near, across the room and
from the next room, in a quiet and in a busy room), so the figures show the margin's shape, not a given
user's voice; `calibrate` scores the user's own.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.resample import resample
from appliance.calibrate.scores import wake_scores
from appliance.calibrate.thresholds import THIN_MARGIN
from appliance.engines import EngineChoice, Models
from appliance.tts.base import synthesize_all
from appliance.tts.piper import PiperSettings
from appliance.utils.stats import percentile
from appliance.wake.base import WakeDetector
from appliance.wake.openwakeword import OpenWakeWordDetector

PHRASES = ("Hey Jarvis.", "Hey, Jarvis!", "Hey Jarvis, what time is it?", "Hey Jarvis, turn it down.")
RATES = (0.85, 1.2)
"""Piper's length scale: faster and slower than its own pace."""
LEVELS = {"near": 0.0, "across the room": -18.0, "next room": -30.0}
"""Gain of each phrase (dB): as said near the device, from across a room, and from the next room."""
EXPECTED = ("near", "across the room")
"""Where a wake phrase must be heard: a miss or a thin margin there is warned about."""
ROOM_NOISE = 30.0
"""The quiet room's noise (int16 standard deviation, about -60 dBFS)."""
BUSY_NOISE = 300.0
"""A busy room's (about -40 dBFS): each phrase is heard in both."""
ROOMS = {"quiet": ROOM_NOISE, "busy": BUSY_NOISE}


def _peak(
    wake: OpenWakeWordDetector, said: np.ndarray, level: float, floor: float, room: np.ndarray, rng: Any, word: str
) -> float:
    """The best score of ``said`` at ``level`` dB over noise of ``floor`` (then a second of the noise alone)."""
    mixed = rng.normal(0, floor, said.size + SAMPLE_RATE)
    mixed[: said.size] += said * 10 ** (level / 20)
    audio = AudioFrame(np.clip(mixed, -32768, 32767).astype(np.int16), SAMPLE_RATE)
    scores = wake_scores(wake, audio, room).get(word)
    return float(scores.max()) if scores is not None and scores.size else 0.0


def wake_margin(models: Models, wake: WakeDetector, threshold: float, word: str = "hey_jarvis") -> dict[str, Any]:
    """Per distance and room: the phrases' best scores for ``word``, how many were missed, how many cleared the
    threshold by less than ``THIN_MARGIN``; a warning when that happens where a phrase must be heard."""
    if not isinstance(wake, OpenWakeWordDetector):
        return {"skipped": "the wake engine gives no raw scores"}
    rng = np.random.default_rng(0)
    room = rng.normal(0, ROOM_NOISE, 3 * SAMPLE_RATE).astype(np.int16)  # the lead-in the model warms up on
    peaks: dict[str, list[float]] = {f"{d}, {r} room": [] for d in LEVELS for r in ROOMS}
    for rate in RATES:
        voice = models.tts(EngineChoice(piper=PiperSettings(length_scale=rate)))
        try:
            for text in PHRASES:
                said = resample(asyncio.run(synthesize_all(voice, text)), SAMPLE_RATE).data.astype(np.float32)
                for (distance, level), (kind, floor) in itertools.product(LEVELS.items(), ROOMS.items()):
                    peaks[f"{distance}, {kind} room"].append(_peak(wake, said, level, floor, room, rng, word))
        finally:
            voice.close()
    report: dict[str, Any] = {"threshold": threshold, "word": word}
    trouble = []
    for condition, scores in peaks.items():
        missed = sum(p < threshold for p in scores)
        thin = sum(threshold <= p < threshold + THIN_MARGIN for p in scores)
        report[condition] = {
            "phrases": len(scores),
            "score_min": round(min(scores), 3),
            "score_p50": percentile(scores, 0.5),
            "missed": missed,
            "thin_margin": thin,
        }
        if (missed or thin) and condition.startswith(EXPECTED):
            trouble.append(f"{condition}: {missed} missed, {thin} within {THIN_MARGIN}")
    report["warning"] = (
        f"the wake word's margin over the threshold {threshold} is thin ({'; '.join(trouble)}): run "
        "`appliance-cli calibrate` with the user's own voice"
        if trouble
        else None
    )
    return report
