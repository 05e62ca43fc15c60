"""An acoustic path for the virtual sound card: what the speaker plays reaches the microphone.

A real device has its speaker a few centimetres from its microphone. The private PulseAudio server has no
such path: its speaker is a null sink. :class:`AcousticPath` records the sink's monitor and hands it to the
microphone feeder delayed, scaled and with a short reverberant tail, so echo cancellation, barge-in over a
loud reply and calibrate's echo figures can be tested as they happen on a device.
"""

from __future__ import annotations

import collections
import contextlib
import subprocess
import threading
from dataclasses import dataclass

import numpy as np

from appliance.audio.frame import SAMPLE_RATE

TAIL_START = 0.005
"""Seconds after the direct sound where the reverberant tail starts (the first reflections)."""
TAIL_SECONDS = 0.15
"""Length of the tail kept (a small, furnished room)."""
READ_SAMPLES = 160
"""Samples per read from the monitor: 10 ms, so the line is refilled in small steps."""
MONITOR_LATENCY_MS = 50


@dataclass(frozen=True)
class EchoSettings:
    """How the speaker is heard at the microphone."""

    delay: float = 0.08
    """Seconds the direct sound takes from the sink's monitor to the microphone feed (the rig's own latency,
    about 10 to 30 ms, comes on top)."""
    gain_db: float = -6.0
    """Level of the direct sound relative to what was played."""
    reverb_db: float | None = -12.0
    """Energy of the reverberant tail relative to the direct sound; None: no tail."""
    rt60: float = 0.2
    """Seconds for the tail to decay by 60 dB."""
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.delay <= 1.0:
            raise ValueError("echo delay must be between 0 and 1 s")
        if self.rt60 <= 0:
            raise ValueError("rt60 must be positive")

    def impulse_response(self) -> np.ndarray:
        """The path's impulse response at 16 kHz, from the direct sound on (the delay is not in it)."""
        gain = 10 ** (self.gain_db / 20)
        if self.reverb_db is None:
            return np.array([gain])
        n = int((TAIL_START + TAIL_SECONDS) * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        tail = np.random.default_rng(self.seed).normal(0.0, 1.0, n) * np.exp(-6.9 * t / self.rt60)
        tail[: int(TAIL_START * SAMPLE_RATE)] = 0.0
        tail *= gain * np.sqrt(10 ** (self.reverb_db / 10) / float(np.dot(tail, tail)))
        tail[0] = gain
        return tail

    @property
    def energy_db(self) -> float:
        """Echo return: the energy the path passes on, direct sound and tail, in dB (0: all of it)."""
        h = self.impulse_response()
        return float(10 * np.log10(np.dot(h, h)))


PULL_TIMEOUT = 0.1
"""Seconds the feeder waits for the monitor before it goes on without it (the server is restarting)."""


class AcousticPath:
    """The sink's monitor through :class:`EchoSettings`, pulled by the microphone feeder block by block.

    The feeder is paced by the monitor: ``pull`` returns once the monitor has delivered as many samples as
    have been pulled, so the speaker and the microphone run on one clock, as they do on a device's codec,
    and the delay, counted in samples, stays put. A monitor late by more than :data:`PULL_TIMEOUT` (the
    server is restarting) lets the feeder go on; the line then runs short and gives silence, never a shift.
    """

    def __init__(self, env: dict[str, str], sink: str, settings: EchoSettings) -> None:
        self.settings = settings
        self._h = settings.impulse_response()
        self._history = np.zeros(self._h.size - 1)
        self._line: collections.deque[np.ndarray] = collections.deque()
        self._delivered = 0
        self._pulled = 0
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.gaps = 0
        """Samples pulled before the monitor had delivered them (given as silence)."""
        self._proc = subprocess.Popen(
            [
                "parec",
                f"--device={sink}.monitor",
                "--format=s16le",
                f"--rate={SAMPLE_RATE}",
                "--channels=1",
                f"--latency-msec={MONITOR_LATENCY_MS}",
                "--raw",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._thread = threading.Thread(target=self._read, name="acoustic-path", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        while True:
            data = self._proc.stdout.read(READ_SAMPLES * 2)
            if not data or len(data) < READ_SAMPLES * 2:
                return
            samples = np.frombuffer(data, np.int16).astype(np.float64)
            with self._lock:
                if not self._delivered:  # the delay starts with the first sample the monitor gives
                    self._line.append(np.zeros(round(self.settings.delay * SAMPLE_RATE)))
                self._line.append(samples)
                self._delivered += samples.size
                self._arrived.notify_all()

    def pull(self, n: int) -> np.ndarray:
        """The echo for the next ``n`` samples of the microphone (float, int16 scale), once the monitor has
        delivered them."""
        with self._lock:
            self._arrived.wait_for(lambda: self._delivered >= self._pulled + n, PULL_TIMEOUT)
            if not self._delivered:  # the monitor has not started: nothing to hear, and no clock to keep
                return np.zeros(n)
            self._pulled += n
            parts: list[np.ndarray] = []
            need = n
            while need and self._line:
                head = self._line[0]
                if head.size <= need:
                    parts.append(self._line.popleft())
                    need -= head.size
                else:
                    parts.append(head[:need])
                    self._line[0] = head[need:]
                    need = 0
            self.gaps += need
        dry = np.concatenate([*parts, np.zeros(need)]) if parts else np.zeros(n)
        if self._h.size == 1:
            return np.asarray(dry * self._h[0])
        full = np.concatenate([self._history, dry])
        wet: np.ndarray = np.convolve(full, self._h, mode="valid")
        self._history = full[-(self._h.size - 1) :]
        return wet

    def stop(self) -> None:
        self._proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(5)
        self._thread.join(5)
