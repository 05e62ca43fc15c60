"""The microphone: a ``sounddevice`` input stream read as an async iterator of 16 kHz frames."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import sounddevice as sd

from appliance.audio.clock import StreamClock, capture_time
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
QUIET_HOLD = 3.0
"""Seconds of quiet after which quiet blocks are handed over two at a time (see ``MicrophoneInput``)."""

ErrorCallback = Callable[[AudioDeviceError | None], None]
"""Told of a device failure (the error), and of the recovery (None)."""


class MicrophoneInput(AudioInput):
    """Any native rate in, 16 kHz mono out; the audio callback only copies and hands over.

    With ``quiet_level`` set, a room that has stayed below it for ``quiet_hold`` seconds is handed over two
    blocks at a time: half the wake-ups of the loop and of the VAD while waiting in silence. The first block
    above the level goes out at once with the one held, so the start of speech is never later; the hold
    must outlast the silences that end a turn, so the end of one is never later either.

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
        quiet_level: float | None = None,
        quiet_hold: float = QUIET_HOLD,
    ) -> None:
        """``quiet_level``: dBFS (RMS) below which a block is quiet (the VAD's energy floor); None: every
        block is handed over as it comes."""
        self.device = device
        self._rate_wanted = sample_rate
        self._on_error = on_error
        self._stall_timeout = stall_timeout
        self._stream: sd.InputStream | sd.OutputStream | None = None
        self._resampler: Resampler | None = None
        self._blocks: collections.deque[tuple[np.ndarray, float]] = collections.deque()
        """Blocks from the device, each with the capture time of its first sample."""
        self._clock: StreamClock | None = None
        self._captured = 0
        """Samples the device delivered since the stream was opened (the audio thread's own count)."""
        self._latency = 0.0
        self._waiter: asyncio.Future[None] | None = None
        """The reader waiting for the next block (woken by a block, or by the stall check)."""
        self._stall_check: asyncio.TimerHandle | None = None
        self._quiet_power = None if quiet_level is None else (10 ** (quiet_level / 20) * 32768.0) ** 2
        """Mean square of int16 samples at ``quiet_level``."""
        self._quiet_blocks = round(quiet_hold / CAPTURE_BLOCK)
        self._quiet_run = 0
        """Quiet blocks in a row (the device thread's own count)."""
        self._held: tuple[np.ndarray, float] | None = None
        """A quiet block waiting to go with the next one (device thread only)."""
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
        self._open_device()

    def _open_device(self) -> None:
        """The blocking part of ``open``, also run in a worker thread by a reopen (so it touches no loop)."""
        index = find_device(self.device, "input")
        info = sd.query_devices(index)
        self.device_name = str(info["name"])
        rates = [r for r in (self._rate_wanted, SAMPLE_RATE, int(info["default_samplerate"])) if r]
        self._clock, self._captured = None, 0
        stream, rate = open_stream("input", index, rates, CAPTURE_BLOCK, self._callback)
        self._latency = float(stream.latency)
        self._resampler = Resampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None
        self._stream = stream
        self.last_block_at = time.monotonic()
        logger.info("microphone open", extra={"device": self.device_name, "rate": rate})

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: sd.CallbackFlags) -> None:
        if status.input_overflow:
            self.xruns += 1  # only this thread writes it: no lock needed
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        block = indata[:, 0].copy()
        stamped = (block, self._stamp(time_info, frames))
        held, self._held = self._held, None
        if self._quiet_power is not None:
            samples = block.astype(np.float32)
            quiet = float(np.dot(samples, samples)) < self._quiet_power * max(block.size, 1)
            self._quiet_run = self._quiet_run + 1 if quiet else 0
            if held is None and self._quiet_run > self._quiet_blocks:
                self._held = stamped
                return
        loop.call_soon_threadsafe(self._put, stamped, held)

    def _stamp(self, time_info: Any, frames: int) -> float:
        """The capture time of the block's first sample, on the stream's smoothed clock (audio thread)."""
        n, self._captured = self._captured, self._captured + frames
        stream = self._stream
        if stream is None:  # the first blocks, while the stream is being opened: its rate is not known yet
            return capture_time(time_info, frames, SAMPLE_RATE, 0.0)
        if self._clock is None:
            self._clock = StreamClock(int(stream.samplerate))
        self._clock.stamp(n, capture_time(time_info, frames, self._clock.rate, self._latency))
        return self._clock.time_of(n)

    def _put(self, block: tuple[np.ndarray, float], held: tuple[np.ndarray, float] | None = None) -> None:
        self.last_block_at = time.monotonic()
        for b in (block,) if held is None else (held, block):
            if len(self._blocks) >= QUEUE_SECONDS / CAPTURE_BLOCK:
                self._blocks.popleft()
                self.dropped_blocks += 1
            self._blocks.append(b)
        self._wake_reader()

    def _wake_reader(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _stalled(self) -> bool:
        return time.monotonic() - self.last_block_at >= self._stall_timeout

    def _check_stall(self) -> None:
        """Runs a few times per stall timeout (one timer, not one per block): wakes a reader the device
        left waiting too long."""
        assert self._loop is not None
        self._stall_check = self._loop.call_later(self._stall_timeout / 4, self._check_stall)
        if self._stalled():
            self._wake_reader()

    async def _next_block(self) -> tuple[np.ndarray, float] | None:
        """The next block from the device; None once it has delivered nothing for the stall timeout, or is
        closed."""
        assert self._loop is not None
        while not self._blocks:
            if self._closed or self._stalled():
                return None
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._blocks.popleft()

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
        assert self._loop is not None
        self._stall_check = self._loop.call_later(self._stall_timeout / 4, self._check_stall)
        try:
            while not self._closed:
                stamped = await self._next_block()
                if stamped is None:
                    if not self._closed:
                        await self._recover(backoff)
                    continue
                block, at = stamped
                resampler = self._resampler
                if resampler is not None:
                    frame = resampler.push(AudioFrame(block, resampler.in_rate))
                    # the frame ends where the block ends (less the resampler's own, constant, delay)
                    self.captured_at = at + block.size / resampler.in_rate - frame.seconds
                else:
                    frame = AudioFrame(block, SAMPLE_RATE)
                    self.captured_at = at
                if frame.samples_per_channel:
                    yield frame
        finally:
            if self._stall_check is not None:
                self._stall_check.cancel()

    async def _recover(self, backoff: Backoff) -> None:
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

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()

    async def aclose(self) -> None:
        self._closed = True
        self._close_stream()
        self._wake_reader()
