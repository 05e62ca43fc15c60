"""The speaker: a ``sounddevice`` output stream that plays the cancelable queue in 20 ms blocks."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import sounddevice as sd

from appliance.audio.capture import ErrorCallback
from appliance.audio.devices import DeviceSpec, close_stream, find_device, open_stream, reopen
from appliance.audio.io import BLOCK_SECONDS, AudioOutput
from appliance.errors import AudioDeviceError
from appliance.utils.aio import cancel_and_wait
from appliance.utils.backoff import Backoff

logger = logging.getLogger(__name__)

STALL_TIMEOUT = 2.0
"""Seconds without a callback from the device before it counts as gone."""
CHECK_INTERVAL = 0.5
STARTUP_BLOCKS = 10
"""Blocks the device must have pulled, at its steady pace, before the speaker counts as started."""
STARTUP_TIMEOUT = 5.0


class SpeakerOutput(AudioOutput):
    """Always running (silence when idle), so the first sample of a reply waits for nothing but one block.

    ``clear_buffer()`` takes effect at the next block the device asks for: at most 20 ms of queued audio
    plus the device's own buffer still sound after it.
    """

    def __init__(self, device: DeviceSpec = None, sample_rate: int = 22050, *, on_error: ErrorCallback | None = None):
        super().__init__(sample_rate)
        self.device = device
        self.device_name = ""
        self._on_error = on_error
        self._stream: sd.InputStream | sd.OutputStream | None = None
        self._watch: asyncio.Task[None] | None = None
        self.last_block_at = 0.0
        """``time.monotonic()`` of the device's last request for audio."""
        self.blocks_played = 0
        self.xruns = 0
        """Times the device ran dry (output underflow: the callback was not run in time), heard as a click."""
        self._started = asyncio.Event()
        self.volume: Callable[[], float] | None = None
        """The gain the samples are multiplied by (the volume when no mixer can set it); None: 1."""

    def open(self) -> None:
        """Open the device (raises AudioDeviceError); tries the voice's rate, then the device's own."""
        self._bind()
        self._open_device()

    def _open_device(self) -> None:
        """The blocking part of ``open``, also run in a worker thread by a reopen (so it touches no loop)."""
        index = find_device(self.device, "output")
        info = sd.query_devices(index)
        self.device_name = str(info["name"])
        rates = [self.sample_rate, int(info["default_samplerate"])]
        stream, rate = open_stream("output", index, rates, BLOCK_SECONDS, self._callback)
        self._stream = stream
        self.sample_rate = rate
        self.latency = float(stream.latency)
        self.last_block_at = time.monotonic()
        logger.info("speaker open", extra={"device": self.device_name, "rate": rate, "latency": self.latency})

    async def start(self) -> None:
        """Open the device and return once it is really consuming audio (a sound server may take a
        second to start pulling a new stream; audio queued before that would start late)."""
        if self._stream is None:
            self.open()
        try:
            await asyncio.wait_for(self._started.wait(), STARTUP_TIMEOUT)
        except TimeoutError:
            logger.warning("speaker slow to start", extra={"device": self.device_name, "seconds": STARTUP_TIMEOUT})
        if self._watch is None:
            self._watch = asyncio.create_task(self._supervise(), name="speaker-supervisor")

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: sd.CallbackFlags) -> None:
        if status.output_underflow:
            self.xruns += 1  # only this thread writes it: no lock needed
        block = self.queue.read(frames)
        gain = self.volume() if self.volume is not None else 1.0
        if gain != 1.0:
            block = (block.astype(np.float32) * gain).astype(np.int16)
        outdata[:, 0] = block
        self.last_block_at = time.monotonic()
        self.blocks_played += 1
        if self.blocks_played == STARTUP_BLOCKS and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._started.set)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        close_stream(stream)

    def _healthy(self) -> bool:
        stream = self._stream
        try:
            active = stream is not None and stream.active
        except sd.PortAudioError:  # a stream PortAudio no longer knows: one error to recover, not a dead supervisor
            return False
        return active and time.monotonic() - self.last_block_at < STALL_TIMEOUT

    async def _supervise(self) -> None:
        backoff = Backoff()
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            if self._healthy():
                continue
            name = self.device_name or self.device
            error = AudioDeviceError(
                f"speaker {name!r} stopped playing (unplugged, or the sound server went away); retrying with backoff"
            )
            logger.error("speaker failed", extra={"error": str(error)})
            if self._on_error is not None:
                self._on_error(error)
            self._close_stream()
            self.queue.clear()  # what was queued cannot be heard any more
            if not await reopen(self._open_device, backoff, "speaker", lambda: False, discard=self._close_stream):
                return
            logger.warning("speaker is back", extra={"device": self.device_name})
            if self._on_error is not None:
                self._on_error(None)

    async def aclose(self) -> None:
        await super().aclose()
        await cancel_and_wait(self._watch)
        self._close_stream()
