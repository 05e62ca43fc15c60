"""The speaker: a ``sounddevice`` output stream that plays the cancelable queue in 20 ms blocks, and rests
(its stream closed) while there is nothing to play."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import sounddevice as sd

from appliance.audio.capture import ErrorCallback
from appliance.audio.devices import DeviceSpec, Stream, close_stream, find_device, open_stream, reopen
from appliance.audio.frame import AudioFrame
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
REST_AFTER = 3.0
"""Seconds of silence after which the stream is closed; the next audio queued opens it again."""
SWITCH_TIMEOUT = 5.0
"""Seconds closing or reopening a resting stream may take (a hung sound server) before it counts as failed."""


class SpeakerOutput(AudioOutput):
    """Plays the queue block by block; after ``rest_after`` seconds of silence its stream rests (closed, so
    no thread wakes 50 times a second to write silence) and the next audio queued, or ``wake()``, opens it
    again. A reopened stream has an empty device buffer: its first sample is heard sooner than one queued
    behind a running stream's silence.

    ``clear_buffer()`` takes effect at the next block the device asks for: at most 20 ms of queued audio
    plus the device's own buffer still sound after it.
    """

    def __init__(
        self,
        device: DeviceSpec = None,
        sample_rate: int = 22050,
        *,
        on_error: ErrorCallback | None = None,
        rest_after: float = REST_AFTER,
    ):
        super().__init__(sample_rate)
        self.device = device
        self.device_name = ""
        self._on_error = on_error
        self.rest_after = rest_after
        """Seconds of silence before the stream rests; 0: it never does."""
        self._stream: Stream | None = None
        self._watch: asyncio.Task[None] | None = None
        self._waking: asyncio.Task[None] | None = None
        self._switch = asyncio.Lock()
        """Held while the stream is being closed to rest or opened again."""
        self.resting = False
        """The stream is closed because nothing played for ``rest_after`` seconds (not a failure)."""
        self.rests = 0
        """Times the stream was closed to rest."""
        self.last_block_at = 0.0
        """``time.monotonic()`` of the device's last request for audio."""
        self.last_sound_at = 0.0
        """``time.monotonic()`` when audio was last queued or played (or ``wake()`` was called)."""
        self.blocks_played = 0
        self.xruns = 0
        """Times the device ran dry (output underflow: the callback was not run in time), heard as a click."""
        self._started = asyncio.Event()
        self.volume: Callable[[], float] | None = None
        """The gain the samples are multiplied by (the volume when no mixer can set it); None: 1."""
        self.tap: Callable[[np.ndarray, int, float, bool], None] | None = None
        """Given every block handed to the device (samples, rate, ``time.monotonic()`` when its first sample is
        heard, whether the device ran dry before it), from the audio thread: the echo canceller's reference.
        It must only copy."""

    def open(self) -> None:
        """Open the device (raises AudioDeviceError); tries the voice's rate, then the device's own."""
        self._bind()
        self._open_device()

    def _open_device(self) -> None:
        """The blocking part of ``open``, also run in a worker thread by a reopen (so it touches no loop)."""
        self._use(*self._new_stream())
        extra = {"device": self.device_name, "rate": self.sample_rate, "latency": self.latency}
        logger.info("speaker open", extra=extra)

    def _new_stream(self) -> tuple[Stream, int]:
        """A started stream and its rate; blocking, and it sets nothing but the device's name."""
        index = find_device(self.device, "output")
        info = sd.query_devices(index)
        self.device_name = str(info["name"])
        rates = [self.sample_rate, int(info["default_samplerate"])]
        return open_stream("output", index, rates, BLOCK_SECONDS, self._callback)

    def _use(self, stream: Stream, rate: int) -> None:
        self._stream = stream
        self.sample_rate = rate
        self.latency = float(stream.latency)
        self.last_block_at = self.last_sound_at = time.monotonic()

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

    async def capture_frame(self, frame: AudioFrame) -> None:
        await super().capture_frame(frame)
        self.wake()

    def wake(self) -> None:
        """Audio is coming: a resting stream is opened now (in a worker thread), a playing one does not rest
        for another ``rest_after`` seconds. Called on the event loop."""
        self.last_sound_at = time.monotonic()
        if self.resting and (self._waking is None or self._waking.done()):
            self._waking = asyncio.create_task(self._resume(), name="speaker-wake")

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: sd.CallbackFlags) -> None:
        if status.output_underflow:
            self.xruns += 1  # only this thread writes it: no lock needed
        out = outdata[:, 0]
        now = time.monotonic()
        delay = self._delay(time_info)
        if self.queue.read_into(out, delay):
            gain = self.volume() if self.volume is not None else 1.0
            if gain != 1.0:
                np.multiply(out, gain, out=out, casting="unsafe")
            self.last_sound_at = now
        if self.tap is not None:
            self.tap(out, self.sample_rate, now + delay, bool(status.output_underflow))
        self.last_block_at = now
        self.blocks_played += 1
        if self.blocks_played == STARTUP_BLOCKS and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._started.set)

    def _delay(self, time_info: Any) -> float:
        """Seconds until this block is heard: the device's own figure when it gives one (a reopened stream
        has an empty buffer), else its nominal latency."""
        if time_info is not None:
            delay = float(time_info.outputBufferDacTime - time_info.currentTime)
            if 0.0 <= delay < 1.0:
                return delay
        return self.latency

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

    def _quiet(self) -> bool:
        return self.rest_after > 0 and self.queue.idle and time.monotonic() - self.last_sound_at >= self.rest_after

    async def _rest(self) -> None:
        """Close the stream while nothing plays (a closed one holds no connection that a restarted sound
        server could leave dead); audio queued meanwhile opens it again."""
        async with self._switch:
            stream = self._stream
            if stream is None or not self._quiet():
                return
            self._stream = None
            self.resting = True
            try:
                await asyncio.wait_for(asyncio.to_thread(close_stream, stream), SWITCH_TIMEOUT)
            except TimeoutError:
                logger.warning("speaker slow to close", extra={"seconds": SWITCH_TIMEOUT})
            self.rests += 1
            logger.debug("speaker resting", extra={"after": self.rest_after})
        if not self.queue.idle:
            self.wake()

    async def _resume(self) -> None:
        async with self._switch:
            if not self.resting:
                return
            attempt = asyncio.ensure_future(asyncio.to_thread(self._new_stream))
            try:
                stream, rate = await asyncio.wait_for(asyncio.shield(attempt), SWITCH_TIMEOUT)
            except (AudioDeviceError, TimeoutError) as exc:  # left closed: the supervisor reports and reopens it
                logger.warning("speaker did not open again", extra={"error": str(exc) or "timeout"})
                return
            finally:
                self.resting = False
                self.last_block_at = time.monotonic()
                if not attempt.done():  # given up on: a stream it opens after all is closed, never used
                    attempt.add_done_callback(_close_opened)
            self._use(stream, rate)
            logger.debug("speaker playing again")

    async def _supervise(self) -> None:
        backoff = Backoff()
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            if self.resting or self._switch.locked():
                continue  # closed on purpose (no callbacks to miss), or being closed or reopened
            if self._healthy():
                if self._quiet():
                    await self._rest()
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
        await cancel_and_wait(self._watch, self._waking)
        self._close_stream()


def _close_opened(attempt: asyncio.Future[tuple[Stream, int]]) -> None:
    if not attempt.cancelled() and attempt.exception() is None:
        close_stream(attempt.result()[0])
