"""The real VAD and wake-word models over whole takes, with their start-up transient left out.

Room sound is SYNTHETIC white noise; the wake phrase is the bundled demo clip (SYNTHETIC speech made with the
Piper voice); "go forward ten meters" is REAL recorded speech.
"""

from __future__ import annotations

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.wav import read_audio
from appliance.bench import DEMO_CLIP
from appliance.calibrate.scores import vad_probabilities, wake_scores
from appliance.vad.silero import WINDOW
from appliance.wake.openwakeword import CHUNK_SAMPLES


def white(std: float, seconds: float, seed: int = 2) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, std, int(seconds * SAMPLE_RATE)).astype(np.int16)


def test_a_fresh_wake_model_scoring_noise_high_is_left_out(jarvis) -> None:  # type: ignore[no-untyped-def]
    take = AudioFrame(white(1000, 4.0), SAMPLE_RATE)
    raw = jarvis.score_all(take)["hey_jarvis"]
    kept = wake_scores(jarvis, take, white(1000, 3.0, seed=3))["hey_jarvis"]
    assert kept.size == take.data.size // CHUNK_SAMPLES
    assert raw.max() > 0.05, "the transient this guards against is gone: scores.py can lose its lead-in"
    assert kept.max() < 0.02


def test_a_wake_phrase_at_the_very_start_of_a_take_is_scored(jarvis) -> None:  # type: ignore[no-untyped-def]
    scores = wake_scores(jarvis, read_audio(DEMO_CLIP), white(30, 1.0))["hey_jarvis"]
    assert scores.max() > 0.5


def test_vad_probabilities_cover_every_window_of_the_take(vad, go_forward) -> None:  # type: ignore[no-untyped-def]
    p = vad_probabilities(vad, go_forward, white(30, 2.0))
    assert p.size == go_forward.data.size // WINDOW
    assert np.median(p[p > 0.5]) > 0.9 and np.percentile(p, 10) < 0.1
