"""The VAD and the wake-word model over whole takes, with each model's start-up transient left out.

A fresh openWakeWord state scores plain noise as high as 0.3 during its first two seconds (its buffers
are still filling); Silero's first windows are a little high too. Each take is therefore scored after a
lead-in of room sound, and only the take's own windows are kept.
"""

from __future__ import annotations

import math

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.vad.silero import WINDOW, SileroVAD
from appliance.wake.openwakeword import CHUNK_SAMPLES, OpenWakeWordDetector

VAD_LEAD_IN = 0.5
WAKE_LEAD_IN = 3.0
WAKE_CHUNK_SECONDS = CHUNK_SAMPLES / SAMPLE_RATE
"""After the lead-in the wake model gives one score per 80 ms chunk."""


def lead_in(room: np.ndarray, seconds: float, unit: int) -> np.ndarray:
    """``seconds`` of room sound (repeated if the take is shorter), a whole number of ``unit`` samples."""
    n = math.ceil(seconds * SAMPLE_RATE / unit) * unit
    return np.resize(room, n).astype(np.int16) if room.size else np.zeros(n, np.int16)


def vad_probabilities(vad: SileroVAD, audio: AudioFrame, room: np.ndarray) -> np.ndarray:
    """Silero's speech probability for every 32 ms window of ``audio``."""
    before = lead_in(room, VAD_LEAD_IN, WINDOW)
    probabilities = vad.probabilities(AudioFrame(np.concatenate([before, audio.data]), SAMPLE_RATE))
    return probabilities[before.size // WINDOW :]


def wake_scores(wake: OpenWakeWordDetector, audio: AudioFrame, room: np.ndarray) -> dict[str, np.ndarray]:
    """Every wake word's score for each 80 ms chunk of ``audio``."""
    before = lead_in(room, WAKE_LEAD_IN, CHUNK_SAMPLES)
    scores = wake.score_all(AudioFrame(np.concatenate([before, audio.data]), SAMPLE_RATE))
    keep = audio.data.size // CHUNK_SAMPLES
    return {name: s[s.size - keep :] if keep else s[:0] for name, s in scores.items()}
