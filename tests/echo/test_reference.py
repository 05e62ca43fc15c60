"""The speaker's audio on the microphone's time line: device timestamps that jitter, a stream that restarts."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.audio.clock import StreamClock
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.resample import resample
from appliance.echo.reference import PlayedAudio

RATE = 22050
BLOCK = 441


def _signal(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.normal(0, 3000, int(seconds * RATE)).clip(-32768, 32767).astype(np.int16)


def _tap(played: PlayedAudio, signal: np.ndarray, start: float, jitter: float) -> None:
    rng = np.random.default_rng(9)
    for i in range(0, signal.size - BLOCK + 1, BLOCK):
        played.tap(signal[i : i + BLOCK], RATE, start + i / RATE + rng.uniform(-jitter, jitter))


def test_jittery_timestamps_give_one_sample_exact_line() -> None:
    """Blocks stamped with +-15 ms of jitter (a sound server's) are placed end to end, where they sound."""
    signal = _signal(3.0)
    played = PlayedAudio()
    _tap(played, signal, start=100.0, jitter=0.015)
    expected = resample(AudioFrame(signal, RATE), SAMPLE_RATE).data.astype(np.float64)
    got = played.read(100.5, SAMPLE_RATE).astype(np.float64)  # one second, half a second in
    inner = got[200:-200]

    def fit(lag: int) -> float:
        return float(np.corrcoef(inner, expected[8200 + lag : 8200 + lag + inner.size])[0, 1])

    best = max(range(-200, 201), key=fit)
    assert abs(best) <= 8 * SAMPLE_RATE // 1000  # within the first stamps' error of its true place
    assert fit(best) > 0.99  # and end to end: no sample dropped or repeated inside the second


def test_a_restarted_stream_is_placed_at_its_own_time_with_silence_between() -> None:
    played = PlayedAudio()
    _tap(played, _signal(0.5), start=10.0, jitter=0.0)
    _tap(played, _signal(0.5), start=11.5, jitter=0.0)  # reopened a second after the first ended
    assert np.abs(played.read(10.1, 1600)).max() > 0
    assert not played.read(10.6, 8000).any()  # between the two: nothing played
    assert np.abs(played.read(11.6, 1600)).max() > 0
    assert played.written_until() == pytest.approx(12.0, abs=0.05)  # less what the resampler still holds


def test_nothing_played_reads_as_silence() -> None:
    played = PlayedAudio()
    assert not played.read(5.0, 160).any() and played.written_until() is None


def test_the_clock_smooths_jitter_and_starts_over_after_a_jump() -> None:
    clock = StreamClock(16000)
    rng = np.random.default_rng(1)
    for k in range(40):
        clock.stamp(k * 512, 50.0 + k * 512 / 16000 + rng.uniform(-0.02, 0.02))
    assert clock.time_of(40 * 512) == pytest.approx(50.0 + 40 * 512 / 16000, abs=0.006)
    clock.stamp(41 * 512, 80.0)  # reopened half a minute later
    assert clock.restarts == 1 and clock.time_of(41 * 512) == pytest.approx(80.0)
