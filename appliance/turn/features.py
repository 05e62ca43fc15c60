"""Whisper's log-mel features in numpy, over the last 8 s of an utterance: what Smart Turn reads."""

from __future__ import annotations

import functools

import numpy as np

from appliance.audio.frame import SAMPLE_RATE

N_FFT = 400
"""Samples per analysis window (25 ms)."""
HOP = 160
"""Samples between windows (10 ms)."""
N_MELS = 80
SECONDS = 8
"""Seconds of audio the model sees: the end of the utterance."""
SAMPLES = SECONDS * SAMPLE_RATE
FRAMES = SAMPLES // HOP
"""Feature frames of the 8 s window (Whisper's last, half-empty frame is dropped)."""
_VARIANCE_EPS = 1e-7
_POWER_FLOOR = 1e-10
_DYNAMIC_RANGE = 8.0
"""Decades below the loudest frame that the features keep."""


@functools.cache
def hann_window() -> np.ndarray:
    """The periodic Hann window of ``N_FFT`` samples (as ``torch.hann_window``)."""
    n = np.arange(N_FFT, dtype=np.float64)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)
    window.flags.writeable = False
    return window


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear to 1 kHz (15 mels), logarithmic above (27 mels per factor 6.4)."""
    hz = np.asarray(hz, dtype=np.float64)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-3) / 1000.0) * 27.0 / np.log(6.4)
    return np.where(hz >= 1000.0, log_part, hz * 3.0 / 200.0)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    log_part = 1000.0 * np.exp((mel - 15.0) * np.log(6.4) / 27.0)
    return np.where(mel >= 15.0, log_part, mel * 200.0 / 3.0)


@functools.cache
def mel_filterbank() -> np.ndarray:
    """``(N_FFT // 2 + 1, N_MELS)``: triangles evenly spaced in mels from 0 to 8 kHz, each scaled to unit area
    (Slaney's normalisation, as librosa and Whisper use)."""
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(SAMPLE_RATE / 2)), N_MELS + 2))
    bins = np.arange(N_FFT // 2 + 1, dtype=np.float64) * SAMPLE_RATE / N_FFT
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    weights = np.asarray(np.clip(np.minimum(rising, falling), 0.0, None) * (2.0 / (upper - lower)), np.float64)
    weights.flags.writeable = False
    return weights


def last_window(samples: np.ndarray) -> np.ndarray:
    """The last ``SECONDS`` of float samples, zeros in front when the utterance is shorter (float32)."""
    tail = np.asarray(samples, dtype=np.float32)[-SAMPLES:]
    if tail.size == SAMPLES:
        return tail
    return np.concatenate([np.zeros(SAMPLES - tail.size, dtype=np.float32), tail])


def log_mel(samples: np.ndarray) -> np.ndarray:
    """``(N_MELS, FRAMES)`` float32 features of the last 8 s of 16 kHz float samples (any length).

    The window is normalised to zero mean and unit variance (padding included, as the model was trained),
    framed as Whisper's centred STFT (reflected at the edges), and its power spectrum mapped to mels,
    taken as log10, held within 8 decades of the loudest value and scaled by ``(x + 4) / 4``.
    """
    window = last_window(samples)
    window = (window - window.mean()) / np.sqrt(window.var() + _VARIANCE_EPS)
    half = N_FFT // 2
    # only the frames kept: the last one starts at (FRAMES - 1) * HOP, so few reflected samples are needed
    right = (FRAMES - 1) * HOP + N_FFT - half - SAMPLES
    padded = np.concatenate([window[half:0:-1], window, window[-2 : -2 - right : -1]]).astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    spectrum = np.fft.rfft(frames * hann_window(), axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    logs = np.log10(np.maximum(power @ mel_filterbank(), _POWER_FLOOR))
    logs = np.maximum(logs, logs.max() - _DYNAMIC_RANGE)
    return np.asarray((logs.T + 4.0) / 4.0, dtype=np.float32)
