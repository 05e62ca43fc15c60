"""Small helpers for building test clips."""

from __future__ import annotations

import asyncio

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame

ALL_WAKE_WORDS = ("hey_jarvis", "alexa", "hey_mycroft", "hey_rhasspy", "okay_nabu")
WAKE_PHRASES = {
    "hey_jarvis": "Hey, Jarvis.",
    "alexa": "Alexa.",
    "hey_mycroft": "Hey Mycroft.",
    "hey_rhasspy": "Hey Rhasspy.",
    "okay_nabu": "Okay Nabu.",
}


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.int16)


def join(*parts: np.ndarray) -> AudioFrame:
    return AudioFrame(np.concatenate(parts), SAMPLE_RATE)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
