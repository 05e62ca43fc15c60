"""Level math for calibration: dBFS per VAD window, the room's noise floor, the speech level, SNR and clipping."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, SILENCE_DBFS, AudioFrame
from appliance.audio.frame import window_levels as frame_window_levels
from appliance.vad.silero import WINDOW

CLIP_LEVEL = 32440
"""Absolute sample value (99 % of full scale) at or above which a sample counts as clipped."""
VOICE_ABOVE_NOISE = 3.0
"""dB a window must stand above the room's 90th-percentile level to count as voice."""
VOICE_RANGE = 25.0
"""dB below the loudest window of a take that still count as voice (quieter is the room between words)."""
WINDOW_SECONDS = WINDOW / SAMPLE_RATE


def dbfs(rms: float) -> float:
    """An RMS (full scale = 1.0) in dBFS, never below :data:`SILENCE_DBFS`."""
    return max(SILENCE_DBFS, 20.0 * float(np.log10(rms)) if rms > 0 else SILENCE_DBFS)


def rms_dbfs(samples: np.ndarray) -> float:
    """Level of int16 samples in dBFS (a full-scale sine is -3 dBFS), never below :data:`SILENCE_DBFS`."""
    return max(SILENCE_DBFS, AudioFrame(samples, SAMPLE_RATE).rms_dbfs())


def window_levels(samples: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """dBFS of every whole ``window`` (default: the VAD's 32 ms, so levels and probabilities line up)."""
    return frame_window_levels(samples, window)


@dataclass(frozen=True)
class RoomLevels:
    """The room's sound while nobody talks."""

    rms_dbfs: float
    """Level of the whole take."""
    p10: float
    """10th percentile of the 32 ms window levels (the quietest moments)."""
    p50: float
    """Median window level: the noise floor (a door or a cough does not move it)."""
    p90: float
    p99: float
    peak_dbfs: float
    """Largest sample, in dBFS."""
    seconds: float

    @property
    def floor_dbfs(self) -> float:
        return self.p50


def measure_room(samples: np.ndarray) -> RoomLevels:
    levels = window_levels(samples)
    if not levels.size:
        raise ValueError("measure_room needs at least one 32 ms window")
    p10, p50, p90, p99 = (float(v) for v in np.percentile(levels, [10, 50, 90, 99]))
    peak = float(np.max(np.abs(samples.astype(np.int32)))) / 32768.0
    return RoomLevels(rms_dbfs(samples), p10, p50, p90, p99, dbfs(peak), samples.size / SAMPLE_RATE)


@dataclass(frozen=True)
class SpeechLevels:
    """The user's voice in the speech take."""

    speech_dbfs: float
    """Level of the voice alone: the power of the voiced windows less the room's floor."""
    voiced_seconds: float
    snr_db: float
    """Speech level above the room's noise floor (``speech_dbfs - noise floor``)."""
    clipped_fraction: float
    """Share of the take's samples at or near full scale."""
    voiced: np.ndarray = field(repr=False, compare=False)
    """Per 32 ms window: True where the voice is."""

    @property
    def heard(self) -> bool:
        return self.voiced_seconds > 0


def voiced_windows(samples: np.ndarray, room: RoomLevels) -> np.ndarray:
    """Windows loud enough above the room, and within :data:`VOICE_RANGE` of the loudest."""
    levels = window_levels(samples)
    if not levels.size:
        return np.zeros(0, dtype=bool)
    gate = max(room.p90 + VOICE_ABOVE_NOISE, float(levels.max()) - VOICE_RANGE)
    return np.asarray(levels >= gate)


def measure_speech(samples: np.ndarray, room: RoomLevels) -> SpeechLevels:
    """Voice level, SNR and clipping of a take in which the user spoke (room noise subtracted by power)."""
    voiced = voiced_windows(samples, room)
    n = voiced.size
    windows = samples[: n * WINDOW].reshape(n, WINDOW)[voiced] if n else np.zeros((0, WINDOW), np.int16)
    clipped = float(np.mean(np.abs(samples.astype(np.int32)) >= CLIP_LEVEL)) if samples.size else 0.0
    seconds = float(np.count_nonzero(voiced)) * WINDOW_SECONDS
    if not seconds:
        return SpeechLevels(SILENCE_DBFS, 0.0, 0.0, clipped, voiced)
    # voiced windows stand at least VOICE_ABOVE_NOISE over the floor, so the difference stays positive
    voice_power = 10 ** (rms_dbfs(windows.reshape(-1)) / 10) - 10 ** (room.floor_dbfs / 10)
    level = 10 * float(np.log10(voice_power))
    return SpeechLevels(level, seconds, level - room.floor_dbfs, clipped, voiced)
