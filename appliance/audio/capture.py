"""The microphone: a ``sounddevice`` input stream read as an async iterator of 16 kHz frames."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import sounddevice as sd

from appliance.audio.devices import DeviceSpec, close_stream, find_device, open_stream, reopen
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import AudioInput
from appliance.audio.resample import Resampler
from appliance.errors import AudioDeviceError
from appliance.utils.backoff import Backoff

logger = logging.getLogger(__name__)

CAPTURE_BLOCK = 0.032
"""Seconds per microphone block: one VAD window, so each block costs one wake-up of the loop and of the VAD."""
STALL_TIMEOUT = 2.0
"""Seconds without a block from the device before it counts as gone."""
QUEUE_SECONDS = 2.0
"""Audio held for a slow reader; beyond it the oldest blocks are dropped (and counted)."""

ErrorCallback = Callable[[AudioDeviceError | None], None]
"""Told of a device failure (the error), and of the recovery (None)."""


class MicrophoneInput(AudioInput):
    """Any native rate in, 16 kHz mono out; the audio callback only copies and hands over.

    A device that fails or stops delivering is closed, reported and reopened with backoff; the
    iteration goes on when it is back.
    """

    realtime = True

    def __init__(
        self,
        device: DeviceSpec = None,
        *,
        sample_rate: int | None = None,
        on_error: ErrorCallback | None = None,
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        self.device = device
        self._rate_wanted = sample_rate
        self._on_error = on_error
        self._stall_timeout = stall_timeout
        self._stream: sd.InputStream | sd.OutputStream | None = None
        self._resampler: Resampler | None = None
        self._queue: asyncio.Queue[np.ndarray] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.dropped_blocks = 0
        self.xruns = 0
        """Blocks the device itself lost (input overflow: the callback was not run in time), not the agent."""
        self.last_block_at = 0.0
        """``time.monotonic()`` of the last block from the device (a liveness signal)."""
        self.device_name = ""
        self.recovering_since: float | None = None
        """``time.monotonic()`` when the device was lost, while it is being reopened (else None)."""

    def open(self) -> None:
        """Open the device now (raises AudioDeviceError): a wrong device fails at start, not later."""
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(maxsize=int(QUEUE_SECONDS / CAPTURE_BLOCK))
        self._open_device()

    def _open_device(self) -> None:
        """The blocking part of ``open``, also run in a worker thread by a reopen (so it touches no loop)."""
        index = find_device(self.device, "input")
        info = sd.query_devices(index)
        self.device_name = str(info["name"])
        rates = [r for r in (self._rate_wanted, SAMPLE_RATE, int(info["default_samplerate"])) if r]
        stream, rate = open_stream("input", index, rates, CAPTURE_BLOCK, self._callback)
        self._stream = stream
        self._resampler = Resampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None
        self.last_block_at = time.monotonic()
        logger.info("microphone open", extra={"device": self.device_name, "rate": rate})

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: sd.CallbackFlags) -> None:
        if status.input_overflow:
            self.xruns += 1  # only this thread writes it: no lock needed
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._put, indata[:, 0].copy())

    def _put(self, block: np.ndarray) -> None:
        assert self._queue is not None
        self.last_block_at = time.monotonic()
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped_blocks += 1
        self._queue.put_nowait(block)

    def _close_stream(self) -> None:
        stream, self._stream = self._stream, None
        close_stream(stream)

    def _report(self, error: AudioDeviceError | None) -> None:
        if error is not None:
            logger.error("microphone failed", extra={"error": str(error), "device": self.device})
        else:
            logger.warning("microphone is back", extra={"device": self.device})
        if self._on_error is not None:
            self._on_error(error)

    async def _reopen(self, backoff: Backoff) -> None:
        if await reopen(self._open_device, backoff, "microphone", lambda: self._closed, discard=self._close_stream):
            self._report(None)

    async def _frames(self) -> AsyncIterator[AudioFrame]:
        if self._stream is None:
            self.open()
        backoff = Backoff()
        while not self._closed:
            assert self._queue is not None
            try:
                block = await asyncio.wait_for(self._queue.get(), self._stall_timeout)
            except TimeoutError:
                name = self.device_name or self.device
                self._report(
                    AudioDeviceError(
                        f"microphone {name!r} stopped delivering audio (unplugged, or the sound server went away);"
                        " retrying with backoff"
                    )
                )
                self._close_stream()
                self.recovering_since = time.monotonic()
                try:
                    await self._reopen(backoff)
                finally:
                    self.recovering_since = None
                continue
            if self._resampler is not None:
                frame = self._resampler.push(AudioFrame(block, self._resampler.in_rate))
            else:
                frame = AudioFrame(block, SAMPLE_RATE)
            if frame.samples_per_channel:
                yield frame

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()

    async def aclose(self) -> None:
        self._closed = True
        self._close_stream()
