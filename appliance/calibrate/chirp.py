"""The test sweep and the echo it leaves at the microphone: delay and level by cross-correlation."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.resample import resample
from appliance.calibrate.levels import dbfs

SWEEP_SECONDS = 0.8
SWEEP_LOW = 150.0
"""Hz where the sweep starts (small speakers give little below)."""
SWEEP_HIGH = 7000.0
"""Hz where it ends: below the 8 kHz the 16 kHz microphone path carries."""
SWEEP_AMPLITUDE = 0.3
"""Peak of the sweep (about -10 dBFS): clearly audible, far from clipping a speaker."""
FADE_SECONDS = 0.01
HEARD_RATIO = 12.0
"""How far the correlation peak must stand above the correlation's own noise (robust sigma) to count."""


def log_sweep(rate: int, seconds: float = SWEEP_SECONDS, amplitude: float = SWEEP_AMPLITUDE) -> AudioFrame:
    """An exponential sine sweep from :data:`SWEEP_LOW` to :data:`SWEEP_HIGH` at ``rate``, with short fades."""
    high = min(SWEEP_HIGH, 0.45 * rate)
    t = np.arange(int(seconds * rate)) / rate
    k = np.log(high / SWEEP_LOW)
    phase = 2 * np.pi * SWEEP_LOW * seconds / k * (np.exp(t / seconds * k) - 1)
    signal = amplitude * np.sin(phase)
    fade = min(int(FADE_SECONDS * rate), t.size // 2)
    ramp = np.linspace(0.0, 1.0, fade)
    signal[:fade] *= ramp
    signal[t.size - fade :] *= ramp[::-1]
    return AudioFrame.from_float32(signal.astype(np.float32), rate)


@dataclass(frozen=True)
class EchoMatch:
    """Where (and how loud) the played sweep shows up in a recording."""

    heard: bool
    """The correlation peak stands out of the noise: there is an acoustic path."""
    offset: float
    """Seconds from the start of the recording to the start of the sweep in it (when heard)."""
    level_db: float
    """Level of the sweep in the recording relative to the played one (0 dB: as loud as played)."""
    strength: float
    """Correlation peak over the correlation's robust noise level."""


def find_echo(played: AudioFrame, recording: AudioFrame) -> EchoMatch:
    """Matched filter: the lag where the played sweep (at 16 kHz) best fits the 16 kHz recording.

    The level is the least-squares gain of the sweep at that lag, so room noise does not inflate it.
    """
    reference = resample(played, SAMPLE_RATE).to_float32().astype(np.float64)
    heard_audio = recording.to_float32().astype(np.float64)
    if heard_audio.size < reference.size or not reference.any():
        return EchoMatch(False, 0.0, float("-inf"), 0.0)
    n = heard_audio.size + reference.size
    size = 1 << (n - 1).bit_length()
    spectrum = np.fft.rfft(heard_audio, size) * np.conj(np.fft.rfft(reference, size))
    lags = heard_audio.size - reference.size + 1
    correlation = np.fft.irfft(spectrum, size)[:lags]
    peak = int(np.argmax(np.abs(correlation)))
    magnitude = abs(float(correlation[peak]))
    spread = 1.4826 * float(np.median(np.abs(correlation - np.median(correlation))))
    strength = magnitude / spread if spread > 0 else (np.inf if magnitude > 0 else 0.0)
    gain = magnitude / float(np.dot(reference, reference))
    heard = bool(magnitude > 0 and strength >= HEARD_RATIO)
    return EchoMatch(heard, peak / SAMPLE_RATE, dbfs(gain), float(strength))
