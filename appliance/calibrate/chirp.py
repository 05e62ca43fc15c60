"""The test sweep and the echo it leaves at the microphone: the path's delay and level by deconvolution."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame

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


FIRST_GAP = 1.0
"""Silence after the sweep: its echo, up to a second late, is heard alone."""
NOISE_SECONDS = 3.0
"""Noise played after the gap, in the sweep's band: the sound an echo canceller's figure is measured on
(on sweeps, a narrow band at a time, WebRTC's AEC3 takes out 6 to 30 dB from one moment to the next; on
noise or speech a steady 30 dB and more)."""
NOISE_RMS = SWEEP_AMPLITUDE / 2
"""RMS of the noise: 3 dB under the sweep's."""


def band_noise(rate: int, seconds: float = NOISE_SECONDS, rms: float = NOISE_RMS, seed: int = 0) -> np.ndarray:
    """White noise limited to the sweep's band at ``rate``, with short fades (float32)."""
    n = int(seconds * rate)
    spectrum = np.fft.rfft(np.random.default_rng(seed).normal(0.0, 1.0, n))
    freqs = np.fft.rfftfreq(n, 1.0 / rate)
    spectrum[(freqs < SWEEP_LOW) | (freqs > min(SWEEP_HIGH, 0.45 * rate))] = 0
    noise = np.fft.irfft(spectrum, n)
    noise *= rms / max(float(noise.std()), 1e-12)
    fade = min(int(FADE_SECONDS * rate), n // 2)
    ramp = np.linspace(0.0, 1.0, fade)
    noise[:fade] *= ramp
    noise[n - fade :] *= ramp[::-1]
    return np.clip(noise, -1.0, 1.0).astype(np.float32)


def probe_sound(rate: int) -> AudioFrame:
    """What calibrate plays at ``rate``: the sweep, :data:`FIRST_GAP` s of silence, then
    :data:`NOISE_SECONDS` s of noise in the sweep's band (about 4.8 s in all)."""
    sweep = log_sweep(rate).to_float32()
    gap = np.zeros(int(FIRST_GAP * rate), np.float32)
    return AudioFrame.from_float32(np.concatenate([sweep, gap, band_noise(rate)]), rate)


def first_sweep(played: AudioFrame, recording: AudioFrame) -> tuple[AudioFrame, AudioFrame]:
    """The part of both (on one time line) that holds the sweep of :func:`probe_sound` and its echo alone: a
    path measured over one sweep is not smeared by a sound server that slowly changes its rate."""
    level = np.abs(played.data.astype(np.int32))
    # the first loud sample: a resampler's ringing and the speaker's dither leave stray non-zero ones before it
    sounding = np.flatnonzero(level > level.max() // 100) if level.size else level
    start = int(sounding[0]) if sounding.size else 0
    end = start + int((SWEEP_SECONDS + FIRST_GAP) * SAMPLE_RATE)
    first = played.data[start:end].copy()
    first[int(SWEEP_SECONDS * SAMPLE_RATE) + int(FADE_SECONDS * SAMPLE_RATE) :] = 0
    return AudioFrame(first, SAMPLE_RATE), AudioFrame(recording.data[start:end], SAMPLE_RATE)


@dataclass(frozen=True)
class EchoPath:
    """The speaker -> microphone path, from what was played and what was recorded on one time line."""

    heard: bool
    delay: float
    """Seconds from a sound being heard at the speaker to its direct arrival at the microphone."""
    level_db: float
    """Echo return: the energy the path passes on (direct sound and reflections), relative to what was
    played, over the sweep's band."""
    strength: float


PATH_TAIL = 0.2
"""Seconds after the direct sound whose reflections count into the level."""


def echo_path(played: AudioFrame, recording: AudioFrame, max_delay: float = 1.0) -> EchoPath:
    """The path's impulse response by deconvolution of ``recording`` by ``played`` (both 16 kHz, sample
    ``n`` of one at the same moment as sample ``n`` of the other).

    The delay is the lag of the response's peak. The level is the mean of the path's power gain over the
    sweep's band, from the response around the peak: a delay that falls between two samples, or a room that
    spreads the echo over reflections, does not lower it, as a gain read at the single best lag would.
    """
    x = played.to_float32().astype(np.float64)
    y = recording.to_float32().astype(np.float64)
    n = min(x.size, y.size)
    if not n or not x.any():
        return EchoPath(False, 0.0, float("-inf"), 0.0)
    x, y = x[:n], y[:n]
    size = 1 << (2 * n - 1).bit_length()
    spectrum_x = np.fft.rfft(x, size)
    power_x = np.abs(spectrum_x) ** 2
    band = power_x > 1e-3 * power_x.max()  # where the sweep has energy to measure with
    response_spectrum = np.where(band, np.fft.rfft(y, size) * np.conj(spectrum_x) / np.maximum(power_x, 1e-12), 0)
    h = np.fft.irfft(response_spectrum, size)[: int(max_delay * SAMPLE_RATE)]
    peak = int(np.argmax(np.abs(h)))
    spread = 1.4826 * float(np.median(np.abs(h - np.median(h))))
    strength = abs(float(h[peak])) / spread if spread > 0 else float(np.inf if h[peak] else 0.0)
    if strength < HEARD_RATIO:
        return EchoPath(False, 0.0, float("-inf"), float(strength))
    lo, hi = max(0, peak - int(0.002 * SAMPLE_RATE)), peak + int(PATH_TAIL * SAMPLE_RATE)
    window = h[lo:hi]
    noise = spread**2 * window.size  # what the room's noise alone puts into a window that long
    gain = np.abs(np.fft.rfft(window, size)) ** 2
    energy = max(float(np.mean(gain[band])) - noise, 1e-12)
    return EchoPath(True, peak / SAMPLE_RATE, 10 * float(np.log10(energy)), float(strength))
