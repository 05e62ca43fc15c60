"""Level math on synthetic signals (sines, white noise, digital silence): known answers."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.audio.frame import SAMPLE_RATE
from appliance.calibrate.levels import (
    SILENCE_DBFS,
    measure_room,
    measure_speech,
    rms_dbfs,
    window_levels,
)
from appliance.vad.silero import WINDOW


def sine(amplitude: float, seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def noise(std: float, seconds: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, std, int(seconds * SAMPLE_RATE)).astype(np.int16)


@pytest.mark.parametrize("amplitude", [1.0, 0.5, 0.01])
def test_a_sine_is_3_db_below_its_peak(amplitude: float) -> None:
    assert rms_dbfs(sine(amplitude, 1.0)) == pytest.approx(20 * np.log10(amplitude) - 3.01, abs=0.05)


def test_digital_silence_is_a_finite_floor_not_minus_infinity() -> None:
    quiet = np.zeros(SAMPLE_RATE, np.int16)
    assert rms_dbfs(quiet) == SILENCE_DBFS
    assert np.all(window_levels(quiet) == SILENCE_DBFS)
    room = measure_room(quiet)
    assert room.floor_dbfs == SILENCE_DBFS and room.peak_dbfs == SILENCE_DBFS


def test_window_levels_line_up_with_the_vad_windows() -> None:
    audio = np.concatenate([sine(0.5, 0.32), np.zeros(WINDOW * 5, np.int16)])
    levels = window_levels(audio)
    assert levels.size == audio.size // WINDOW
    assert np.all(levels[:10] > -10) and np.all(levels[10:] == SILENCE_DBFS)


def test_the_room_floor_ignores_a_short_loud_event() -> None:
    room = noise(100, 5.0)
    door = room.copy()
    door[SAMPLE_RATE : SAMPLE_RATE + 3200] = sine(0.8, 0.2)
    quiet, slam = measure_room(room), measure_room(door)
    assert quiet.floor_dbfs == pytest.approx(20 * np.log10(100 / 32768), abs=0.5)
    assert slam.floor_dbfs == pytest.approx(quiet.floor_dbfs, abs=0.3)  # the median does not move
    assert slam.rms_dbfs > quiet.rms_dbfs + 10  # the RMS does
    assert slam.peak_dbfs > -3 and slam.p99 > slam.p90 > slam.p50 > slam.p10


def test_speech_level_and_snr_subtract_the_room() -> None:
    """A 'voice' (sine at -23 dBFS RMS) for 1 s over white noise at -50 dBFS."""
    room = noise(103, 5.0)
    take = noise(103, 3.0, seed=1)
    take[SAMPLE_RATE : 2 * SAMPLE_RATE] += sine(0.1, 1.0)
    speech = measure_speech(take, measure_room(room))
    assert speech.voiced_seconds == pytest.approx(1.0, abs=0.07)
    assert speech.speech_dbfs == pytest.approx(-23.0, abs=0.3)
    assert speech.snr_db == pytest.approx(-23.0 - 20 * np.log10(103 / 32768), abs=0.5)
    assert speech.clipped_fraction == 0


def test_nothing_said_is_no_voice() -> None:
    room = measure_room(noise(300, 3.0))
    assert not measure_speech(noise(300, 3.0, seed=2), room).heard


def test_clipping_is_the_share_of_samples_at_full_scale() -> None:
    take = sine(0.3, 1.0)
    take[:160] = 32767
    take[160:320] = -32768
    speech = measure_speech(take, measure_room(noise(10, 1.0)))
    assert speech.clipped_fraction == pytest.approx(320 / take.size, rel=0.01)
