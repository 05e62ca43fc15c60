"""Rooms for the virtual microphone and ``appliance-cli calibrate`` run as a user runs it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.rig.sound_server import Clip, MicFeeder, VirtualSoundServer

RUN_TIMEOUT = 90.0
QUIET_STD = 30
"""White noise in int16 units: about -61 dBFS."""


class Room(MicFeeder):
    """The virtual microphone in a room: ``background`` looped under everything, speech mixed on top of it."""

    def __init__(self, fifo: Path, background: np.ndarray) -> None:
        super().__init__(fifo)
        self._background = background.astype(np.float64)
        self._at = 0

    def _silence(self, n: int) -> np.ndarray:
        part = np.take(self._background, np.arange(self._at, self._at + n), mode="wrap")
        self._at = (self._at + n) % self._background.size
        return part.astype(np.int16)

    def say(self, speech: AudioFrame) -> Clip:
        under = np.take(self._background, np.arange(speech.data.size), mode="wrap")
        mixed = np.clip(speech.data + under, -32768, 32767).astype(np.int16)
        return self.play(AudioFrame(mixed, SAMPLE_RATE))


def white_room(fifo: Path, std: float) -> Room:
    return Room(fifo, np.random.default_rng(3).normal(0, std, 10 * SAMPLE_RATE))


def babble(readings: list[AudioFrame], dbfs: float, seconds: float = 10.0) -> np.ndarray:
    """Four readers at once, each looped from its own offset, at ``dbfs`` RMS, over a faint white floor."""
    n = int(seconds * SAMPLE_RATE)
    mix = np.zeros(n)
    for i, reading in enumerate(readings[:4]):
        voice = reading.data.astype(np.float64)
        mix += np.take(voice, np.arange(n) + i * SAMPLE_RATE // 3, mode="wrap") / voice.std()
    mix *= 10 ** (dbfs / 20) * 32768 / mix.std()
    return mix + np.random.default_rng(4).normal(0, QUIET_STD, n)


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str
    config: dict[str, Any]
    seconds: float

    def line(self, start: str) -> str:
        return next(line for line in self.stdout.splitlines() if line.startswith(start))


def calibrate(
    server: VirtualSoundServer,
    config: Path,
    room: Room | None,
    speech: AudioFrame,
    *args: str,
    answers: str | None = None,
) -> Run:
    """Run calibrate; when it says "speak now", the room hears ``speech``.

    ``answers``: run it interactively, with these lines typed in (else ``--non-interactive``).
    """
    mode = [] if answers is not None else ["--non-interactive"]
    cmd = [sys.executable, "-m", "appliance", "--config", str(config), "calibrate", *mode, *args]
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        env=server.env,
        stdin=subprocess.PIPE if answers is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    if proc.stdin is not None:
        proc.stdin.write(answers or "")
        proc.stdin.close()
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(proc.stderr or ()), daemon=True)
    reader.start()
    timer = threading.Timer(RUN_TIMEOUT, proc.kill)
    timer.start()
    lines = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "speak now" in line and room is not None:
                room.say(speech)
        proc.wait(10)
    finally:
        timer.cancel()
        reader.join(10)
    data = tomllib.loads(config.read_text()) if config.exists() else {}
    return Run(proc.returncode, "".join(lines), "".join(errors), data, time.monotonic() - start)
