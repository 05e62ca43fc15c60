"""Short tones that tell the user what the device is doing without words."""

from __future__ import annotations

import enum

import numpy as np

from appliance.audio.frame import AudioFrame

RATE = 22050


class Earcon(enum.StrEnum):
    LISTENING = "listening"
    """Rising: the wake word was heard, speak now."""
    TIMEOUT = "timeout"
    """Falling: nothing was said, back to waiting for the wake word."""
    ERROR = "error"
    """Low double tone: something failed, the reply will not come."""
    TIMER = "timer"
    """Three bright beeps, twice: a timer is done."""


def _tone(freqs: tuple[float, ...], seconds: float, level: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    sweep = np.linspace(freqs[0], freqs[-1], t.size)
    phase = 2 * np.pi * np.cumsum(sweep) / RATE
    fade = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.01)  # 10 ms ramps: no clicks
    return np.sin(phase) * fade * level


def render(earcon: Earcon, level: float = 0.25) -> AudioFrame:
    if earcon is Earcon.LISTENING:
        samples = _tone((660.0, 990.0), 0.12, level)
    elif earcon is Earcon.TIMEOUT:
        samples = _tone((880.0, 520.0), 0.15, level)
    elif earcon is Earcon.TIMER:
        beep, gap, pause = _tone((1320.0,), 0.09, level), np.zeros(int(0.06 * RATE)), np.zeros(int(0.3 * RATE))
        triple = np.concatenate([beep, gap, beep, gap, beep])
        samples = np.concatenate([triple, pause, triple, pause])
    else:
        gap = np.zeros(int(0.05 * RATE))
        samples = np.concatenate([_tone((330.0,), 0.1, level), gap, _tone((330.0,), 0.1, level)])
    return AudioFrame.from_float32(samples.astype(np.float32), RATE)
