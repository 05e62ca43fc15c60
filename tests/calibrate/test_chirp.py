"""The sweep and the matched filter, on SYNTHETIC echoes: a delayed, quieter copy of the sweep in noise."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.resample import resample
from appliance.calibrate.chirp import SWEEP_AMPLITUDE, SWEEP_SECONDS, find_echo, log_sweep
from appliance.calibrate.flow import echo_from
from appliance.calibrate.recorder import Take


def room_with_echo(sweep: AudioFrame, delay: float, gain_db: float, noise_std: float, seconds: float = 3.0):  # type: ignore[no-untyped-def]
    """``seconds`` of white noise at 16 kHz with the sweep added ``delay`` s in, ``gain_db`` below what was played."""
    rng = np.random.default_rng(7)
    audio = rng.normal(0, noise_std, int(seconds * SAMPLE_RATE))
    heard = resample(sweep, SAMPLE_RATE).data.astype(np.float64) * 10 ** (gain_db / 20)
    start = int(delay * SAMPLE_RATE)
    audio[start : start + heard.size] += heard
    return AudioFrame(np.clip(audio, -32768, 32767).astype(np.int16), SAMPLE_RATE)


def test_the_sweep_is_a_log_sweep_with_quiet_ends() -> None:
    sweep = log_sweep(48000)
    assert sweep.sample_rate == 48000 and sweep.seconds == pytest.approx(SWEEP_SECONDS)
    peak = np.abs(sweep.data).max() / 32768
    assert peak == pytest.approx(SWEEP_AMPLITUDE, rel=0.02)
    assert abs(int(sweep.data[0])) < 10 and abs(int(sweep.data[-1])) < 100
    # the instantaneous frequency rises: more zero crossings in the last tenth than in the first
    tenth = sweep.data.size // 10
    first, last = (
        np.count_nonzero(np.diff(np.sign(p.astype(np.int32)))) for p in (sweep.data[:tenth], sweep.data[-tenth:])
    )
    assert last > 10 * first


@pytest.mark.parametrize(("delay", "gain_db"), [(0.012, -6.0), (0.25, -30.0), (0.9, -45.0)])
def test_delay_and_level_of_an_echo_are_found(delay: float, gain_db: float) -> None:
    sweep = log_sweep(22050)
    match = find_echo(sweep, room_with_echo(sweep, delay, gain_db, noise_std=30))
    assert match.heard
    assert match.offset == pytest.approx(delay, abs=1.5 / SAMPLE_RATE)
    assert match.level_db == pytest.approx(gain_db, abs=1.0)


def test_an_echo_below_the_room_noise_is_still_heard() -> None:
    """Echo at -40 dB of a -10 dBFS sweep (about -53 dBFS RMS), 13 dB under white noise at -40 dBFS."""
    sweep = log_sweep(48000)
    match = find_echo(sweep, room_with_echo(sweep, 0.3, -40.0, noise_std=330))
    assert match.heard and match.offset == pytest.approx(0.3, abs=2 / SAMPLE_RATE)


@pytest.mark.parametrize("noise_std", [0.0, 30.0, 3000.0])
def test_no_echo_path_is_not_heard(noise_std: float) -> None:
    sweep = log_sweep(48000)
    silent = room_with_echo(sweep, 0.5, -200.0, noise_std=noise_std)
    assert not find_echo(sweep, silent).heard


def test_the_delay_is_timed_from_when_the_sweep_sounded() -> None:
    sweep = log_sweep(48000)
    match = find_echo(sweep, room_with_echo(sweep, 0.75, -20.0, noise_std=30))
    take = Take(AudioFrame(np.zeros(1, np.int16), SAMPLE_RATE), started_at=1000.0)
    echo = echo_from(match, take, played_at=1000.5)
    assert echo.heard and echo.delay == pytest.approx(0.25, abs=0.001)
    assert echo.level_db == pytest.approx(-20.0, abs=1.0)
    assert not echo_from(find_echo(sweep, room_with_echo(sweep, 0.5, -200.0, 30)), take, 1000.5).heard
