"""The one audio type every stage speaks: interleaved int16 samples with their rate."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000
"""The rate the wake, VAD and STT stages work at."""
SILENCE_DBFS = -120.0
"""Level given to digital silence by :func:`window_levels` (one LSB of int16 is about -96 dBFS)."""


def window_levels(samples: np.ndarray, window: int) -> np.ndarray:
    """dBFS of every whole ``window`` of int16 mono samples, never below :data:`SILENCE_DBFS`."""
    n = samples.size // window
    blocks = samples[: n * window].astype(np.float64).reshape(n, window) / 32768.0
    power = np.mean(np.square(blocks), axis=1)
    floor = 10 ** (SILENCE_DBFS / 10)
    return np.asarray(10 * np.log10(np.maximum(power, floor)), dtype=np.float64)


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples on the int16 scale, rounded and clipped to int16 (no dither)."""
    out: np.ndarray = np.clip(np.rint(samples), -32768, 32767).astype(np.int16)
    return out


@dataclass(frozen=True)
class AudioFrame:
    """A block of PCM audio."""

    data: np.ndarray
    """int16 samples, interleaved when there is more than one channel."""
    sample_rate: int
    """Samples per second per channel."""
    num_channels: int = 1
    """Channel count."""

    def __post_init__(self) -> None:
        if self.data.dtype != np.int16 or self.data.ndim != 1:
            raise ValueError("AudioFrame.data must be a 1-D int16 array")
        if self.sample_rate <= 0 or self.num_channels <= 0:
            raise ValueError("AudioFrame needs a positive sample rate and channel count")
        if self.data.size % self.num_channels:
            raise ValueError("AudioFrame.data length is not a multiple of num_channels")

    @property
    def samples_per_channel(self) -> int:
        return self.data.size // self.num_channels

    @property
    def seconds(self) -> float:
        """Duration in seconds."""
        return self.samples_per_channel / self.sample_rate

    def to_float32(self) -> np.ndarray:
        """Mono float32 samples in [-1, 1] (channels averaged)."""
        samples = self.data.astype(np.float32) / 32768.0
        if self.num_channels > 1:
            samples = samples.reshape(-1, self.num_channels).mean(axis=1)
        return samples

    @classmethod
    def from_float32(cls, samples: np.ndarray, sample_rate: int) -> AudioFrame:
        clipped = np.clip(samples, -1.0, 32767 / 32768)
        return cls((clipped * 32768.0).astype(np.int16), sample_rate)

    def split(self, samples_per_frame: int) -> Iterator[AudioFrame]:
        """Cut into frames of ``samples_per_frame`` (the last one may be shorter)."""
        step = samples_per_frame * self.num_channels
        for start in range(0, self.data.size, step):
            yield AudioFrame(self.data[start : start + step], self.sample_rate, self.num_channels)

    def rms_dbfs(self) -> float:
        """Level of the frame in dB relative to full scale (-inf for digital silence)."""
        if not self.data.size:
            return float("-inf")
        rms = float(np.sqrt(np.mean(np.square(self.data.astype(np.float64) / 32768.0))))
        return 20 * np.log10(rms) if rms > 0 else float("-inf")


def merge_frames(frames: Iterable[AudioFrame]) -> AudioFrame:
    """Join frames of one rate and channel count into one frame."""
    frames = list(frames)
    if not frames:
        raise ValueError("merge_frames needs at least one frame")
    rate, channels = frames[0].sample_rate, frames[0].num_channels
    if any(f.sample_rate != rate or f.num_channels != channels for f in frames):
        raise ValueError("merge_frames: frames differ in sample rate or channel count")
    return AudioFrame(np.concatenate([f.data for f in frames]), rate, channels)
