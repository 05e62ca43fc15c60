"""The sweep and the echo path found from it, on SYNTHETIC echoes: the sweep through a delay, a gain and a
room tail, in noise."""

from __future__ import annotations

import numpy as np
import pytest

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.resample import resample
from appliance.calibrate.chirp import (
    FIRST_GAP,
    NOISE_SECONDS,
    SWEEP_AMPLITUDE,
    SWEEP_SECONDS,
    echo_path,
    first_sweep,
    log_sweep,
    probe_sound,
)
from appliance.rig.acoustic import EchoSettings

PLAYED_AT = 0.5
"""Seconds into the recording when the sweep sounded at the speaker."""


def _on_line(sweep: AudioFrame, seconds: float) -> np.ndarray:
    """The sweep at 16 kHz as the speaker played it, on the recording's time line."""
    line = np.zeros(int(seconds * SAMPLE_RATE))
    heard = resample(sweep, SAMPLE_RATE).data.astype(np.float64)
    start = int(PLAYED_AT * SAMPLE_RATE)
    line[start : start + heard.size] = heard
    return line


def _frame(x: np.ndarray) -> AudioFrame:
    return AudioFrame(np.clip(np.round(x), -32768, 32767).astype(np.int16), SAMPLE_RATE)


def room_with_echo(  # type: ignore[no-untyped-def]
    sweep: AudioFrame, path: EchoSettings, noise_std: float, seconds: float = 3.0, fraction: float = 0.0
):
    """(what was played, what the microphone recorded): white noise, and the sweep through ``path``, a further
    ``fraction`` of a sample late."""
    played = _on_line(sweep, seconds)
    delayed = np.concatenate([np.zeros(round(path.delay * SAMPLE_RATE)), played])[: played.size]
    if fraction:
        spectrum = np.fft.rfft(delayed) * np.exp(-2j * np.pi * np.fft.rfftfreq(delayed.size) * fraction)
        delayed = np.fft.irfft(spectrum, delayed.size)
    heard = np.convolve(delayed, path.impulse_response())[: played.size]
    noise = np.random.default_rng(7).normal(0, noise_std, played.size)
    return _frame(played), _frame(heard + noise)


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
    played, heard = room_with_echo(log_sweep(22050), EchoSettings(delay, gain_db, reverb_db=None), noise_std=30)
    path = echo_path(played, heard)
    assert path.heard
    assert path.delay == pytest.approx(delay, abs=1.5 / SAMPLE_RATE)
    assert path.level_db == pytest.approx(gain_db, abs=1.0)


@pytest.mark.parametrize(("delay", "gain_db"), [(0.02, -12.0), (0.08, -6.0), (0.12, 0.0)])
def test_the_level_counts_the_reflections_and_a_delay_between_two_samples(delay: float, gain_db: float) -> None:
    """The echo return is the energy the whole path passes on: a gain read at the best single lag misses
    the room's tail, and, for a delay that falls between samples, most of the sweep's upper octaves."""
    room = EchoSettings(delay, gain_db, reverb_db=-6.0)
    path = echo_path(*room_with_echo(log_sweep(48000), room, noise_std=30, fraction=0.5))
    assert path.heard and path.delay == pytest.approx(delay, abs=1.5 / SAMPLE_RATE)
    assert path.level_db == pytest.approx(room.energy_db, abs=0.5)
    assert room.energy_db - gain_db > 0.9  # the tail is worth about 1 dB here: the test can tell


def test_an_echo_below_the_room_noise_is_still_heard() -> None:
    """Echo at -40 dB of a -10 dBFS sweep (about -53 dBFS RMS), 13 dB under white noise at -40 dBFS."""
    path = echo_path(*room_with_echo(log_sweep(48000), EchoSettings(0.3, -40.0, reverb_db=None), noise_std=330))
    assert path.heard and path.delay == pytest.approx(0.3, abs=2 / SAMPLE_RATE)


@pytest.mark.parametrize("noise_std", [0.0, 30.0, 3000.0])
def test_no_echo_path_is_not_heard(noise_std: float) -> None:
    played, heard = room_with_echo(log_sweep(48000), EchoSettings(0.5, -200.0, reverb_db=None), noise_std=noise_std)
    assert not echo_path(played, heard).heard


def test_the_probe_measures_the_path_on_its_sweep_and_the_cancellation_on_its_noise() -> None:
    """The whole probe through a path with a room tail: the sweep alone gives the path; the real canceller
    (WebRTC AEC3), run over the whole probe, takes 25 dB or more out of the noise's echo."""
    from appliance.echo.offline import cancel_recording, echo_figures

    probe = probe_sound(48000)
    assert probe.seconds == pytest.approx(SWEEP_SECONDS + FIRST_GAP + NOISE_SECONDS, abs=0.01)
    path = EchoSettings(0.08, -6.0)
    played, heard = room_with_echo(probe, path, noise_std=30, seconds=6.0)
    found = echo_path(*first_sweep(played, heard))
    assert found.heard and found.delay == pytest.approx(0.08, abs=2 / SAMPLE_RATE)
    assert found.level_db == pytest.approx(path.energy_db, abs=1.0)
    cleaned = cancel_recording(heard, played, found.delay)
    assert echo_figures(heard.data, cleaned.data)["erle_db_after_convergence"] >= 25
