"""Recording the microphone for calibration, with the meter fed and a clock for every sample."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from appliance.audio.capture import MicrophoneInput
from appliance.audio.devices import DeviceSpec
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.playback import SpeakerOutput
from appliance.calibrate.levels import rms_dbfs
from appliance.calibrate.meter import LevelMeter
from appliance.errors import AudioDeviceError
from appliance.utils.aio import cancel_and_wait

FIRST_BLOCK_TIMEOUT = 5.0
"""Seconds the microphone may take to deliver its first block."""
SLACK = 3.0
"""Seconds a take may run past its length (a slow sound server) before it counts as failed."""
PLAYOUT_SLACK = 3.0
"""Seconds past the sweep's length that playing it may take."""


@dataclass(frozen=True)
class Take:
    """A stretch of microphone audio and the wall-clock time (``time.time()``) of its first sample."""

    audio: AudioFrame
    started_at: float
    captured_at: float | None = None
    """``time.monotonic()`` when its first sample was captured, from the device's timestamps (None: unknown)."""


class MicTap:
    """The microphone read in the background: every block kept, its level shown on the meter.

    The capture time of sample ``n`` is estimated as ``t0 + n / 16000``, with ``t0`` the earliest
    (arrival time - samples so far / rate) over the blocks: a block cannot arrive before it was captured.
    """

    def __init__(self, device: DeviceSpec, meter: LevelMeter) -> None:
        self._mic = MicrophoneInput(device, stall_timeout=FIRST_BLOCK_TIMEOUT)
        self._meter = meter
        self._blocks: list[np.ndarray] = []
        self.samples = 0
        self._t0 = float("inf")
        self._mono0: float | None = None
        """Monotonic capture time of sample 0 of the stream, from the device's timestamps."""
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._error: Exception | None = None

    @property
    def device_name(self) -> str:
        return self._mic.device_name

    async def start(self) -> None:
        """Open the microphone (AudioDeviceError if it cannot be) and wait for its first block."""
        self._mic.open()
        self._task = asyncio.create_task(self._pump(), name="calibrate-mic")
        await self.wait_for(1, FIRST_BLOCK_TIMEOUT)

    async def _pump(self) -> None:
        try:
            async for frame in self._mic:
                now = time.time()
                if self._mic.captured_at is not None:  # the latest: the stream's line improves with every block
                    self._mono0 = self._mic.captured_at - self.samples / SAMPLE_RATE
                self._blocks.append(frame.data)
                self.samples += frame.samples_per_channel
                self._t0 = min(self._t0, now - self.samples / SAMPLE_RATE)
                self._meter.update(rms_dbfs(frame.data))
                self._changed.set()
        except Exception as exc:
            self._error = exc
            self._changed.set()
            raise

    async def wait_for(self, samples: int, within: float) -> None:
        """Until ``samples`` have arrived in all (AudioDeviceError after ``within`` seconds)."""
        deadline = time.monotonic() + within
        while self.samples < samples:
            if self._error is not None:
                raise AudioDeviceError(f"microphone {self.device_name!r} failed: {self._error}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise AudioDeviceError(
                    f"microphone {self.device_name!r} delivered {self.samples / SAMPLE_RATE:.1f} s of audio"
                    f" in {within:.0f} s; check that it is connected and not held by another program"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                continue

    async def record(self, seconds: float) -> Take:
        """The next ``seconds`` of audio."""
        start = self.samples
        await self.wait_for(start + int(seconds * SAMPLE_RATE), seconds + SLACK)
        return self.take(start, start + int(seconds * SAMPLE_RATE))

    def take(self, start: int, end: int) -> Take:
        audio = np.concatenate(self._blocks)[start:end] if self._blocks else np.zeros(0, np.int16)
        captured = None if self._mono0 is None else self._mono0 + start / SAMPLE_RATE
        return Take(AudioFrame(np.ascontiguousarray(audio), SAMPLE_RATE), self.time_of(start), captured)

    def time_of(self, sample: int) -> float:
        """Estimated wall-clock capture time of sample ``sample`` of the stream."""
        return self._t0 + sample / SAMPLE_RATE

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        await self._mic.aclose()


async def play_while_recording(
    tap: MicTap, speaker: SpeakerOutput, sound: Callable[[int], AudioFrame], lead: float, tail: float
) -> tuple[Take, float | None]:
    """Record ``lead`` seconds, play ``sound(speaker_rate)``, record ``tail`` seconds after it ended.

    Returns the take and when the sound's first sample reached the listener (None if it never played).
    """
    start = tap.samples
    await tap.wait_for(start + int(lead * SAMPLE_RATE), lead + SLACK)
    audio = sound(speaker.sample_rate)
    await speaker.capture_frame(audio)
    segment = speaker.flush()
    try:
        finished = await asyncio.wait_for(speaker.wait_for_playout(segment), audio.seconds + PLAYOUT_SLACK)
    except TimeoutError as exc:
        speaker.clear_buffer()
        name = speaker.device_name or speaker.device
        raise AudioDeviceError(f"speaker {name!r} did not play the test sweep; check the output device") from exc
    end = tap.samples + int((tail + speaker.latency) * SAMPLE_RATE)
    await tap.wait_for(end, tail + speaker.latency + SLACK)
    return tap.take(start, end), finished.started_at
