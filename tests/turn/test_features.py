"""Whisper log-mel features: shape, where a tone's energy lands, and which 8 s of an utterance they cover."""

import numpy as np
import pytest

from appliance.turn.features import FRAMES, N_MELS, SAMPLES, log_mel, mel_filterbank

RATE = 16000


def tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def slaney_mel(hz: float) -> float:
    return 3 * hz / 200 if hz < 1000 else 15 + 27 * np.log(hz / 1000) / np.log(6.4)


def slaney_hz(mel: float) -> float:
    return 200 * mel / 3 if mel < 15 else 1000 * 6.4 ** ((mel - 15) / 27)


@pytest.mark.parametrize("seconds", [0.05, 3.0, 8.0, 20.0])
def test_any_length_gives_80_bins_by_800_frames_of_float32(seconds: float) -> None:
    rng = np.random.default_rng(0)
    features = log_mel((rng.standard_normal(int(seconds * RATE)) * 0.1).astype(np.float32))
    assert features.shape == (N_MELS, FRAMES) == (80, 800)
    assert features.dtype == np.float32 and np.isfinite(features).all()


@pytest.mark.parametrize("band", [8, 26, 55, 70])
def test_a_tone_lands_in_the_mel_band_centred_on_it(band: int) -> None:
    # band centres evenly spaced on Slaney's mel scale from 0 to 8 kHz, as Whisper's filterbank
    centre = slaney_hz((band + 1) * slaney_mel(8000) / (N_MELS + 1))
    features = log_mel(tone(centre, 8.0))
    assert int(np.argmax(features[:, 50:-50].mean(axis=1))) == band


def test_values_keep_eight_decades_below_the_loudest_scaled_by_a_quarter() -> None:
    features = log_mel(tone(1000, 8.0))
    assert features.min() >= features.max() - 2.0 - 1e-6
    assert features.min() == pytest.approx(features.max() - 2.0, abs=1e-5)  # a pure tone reaches the clamp


def test_the_filterbank_triangles_have_unit_area() -> None:
    bank = mel_filterbank()
    assert bank.shape == (201, N_MELS)
    hz_per_bin = RATE / 400
    areas = bank.sum(axis=0) * hz_per_bin
    assert np.allclose(areas, 1.0, atol=0.1)  # Slaney's normalisation, sampled at 40 Hz per FFT bin


def test_shorter_audio_is_left_padded_with_silence() -> None:
    rng = np.random.default_rng(1)
    speech = (rng.standard_normal(2 * RATE) * 0.1).astype(np.float32)
    features = log_mel(speech)
    padded = np.concatenate([np.zeros(SAMPLES - speech.size, np.float32), speech])
    assert np.array_equal(features, log_mel(padded))
    # the padding is the first 6 s: identical frames, then the audio at the end
    assert np.array_equal(features[:, :590], np.repeat(features[:, :1], 590, axis=1))
    assert features[:, 610:].std(axis=1).mean() > 0.05


def test_longer_audio_keeps_its_last_eight_seconds() -> None:
    rng = np.random.default_rng(2)
    last = (rng.standard_normal(SAMPLES) * 0.1).astype(np.float32)
    earlier = tone(440, 5.0)
    assert np.array_equal(log_mel(np.concatenate([earlier, last])), log_mel(last))
