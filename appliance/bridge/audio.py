"""Room audio as the agent's input and output: the same ``AudioInput``/``AudioOutput`` shapes the microphone and
speaker present, so the agent does not know it is in a room.

In: a remote participant's track, 48 kHz from the network, resampled to 16 kHz mono by the SDK's own
``AudioStream`` (libwebrtc's resampler) and handed over in 20 ms frames. While no track is attached (nobody
there yet, the user left, the connection is being restored) the input hands out silence at the same pace, so
the agent's clocks (listening timeouts, the watchdog) go on as with a quiet microphone.

Out: the agent's segments are read from the cancelable playback queue 10 ms at a time, at the published rate,
into the SDK's ``AudioSource``, whose own queue is kept short (``SINK_QUEUE_MS``) and paces the reads: a
barge-in clears both queues, so the room goes quiet within one frame plus the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Protocol

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import BLOCK_SECONDS, AudioInput, AudioOutput
from appliance.utils.aio import cancel_and_wait

logger = logging.getLogger(__name__)

SINK_QUEUE_MS = 100
"""Milliseconds of audio the SDK's source may hold ahead of the network: the pacing, and the most a cleared
reply can still send."""
FRAME_MS = 10
"""LiveKit's frame: what the source takes and the stream hands out."""
CAPTURE_TIMEOUT = 2.0
"""Seconds one frame may wait for room in the source before the output reports it stuck."""
INPUT_BACKLOG = 50
"""Frames (1 s) the input keeps for a reader that fell behind; older ones are dropped and counted."""


class AudioSink(Protocol):
    """What the output writes into: ``livekit.rtc.AudioSource`` (or a fake room's stand-in)."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def queued_duration(self) -> float: ...

    async def capture_frame(self, frame: AudioFrame) -> None: ...

    def clear_queue(self) -> None: ...


class FrameStream(Protocol):
    """A remote track's audio as 16 kHz mono frames (``RoomLink.open_audio``); ``aclose()`` lets it go."""

    def __aiter__(self) -> AsyncIterator[AudioFrame]: ...

    async def aclose(self) -> None: ...


class RoomAudioInput(AudioInput):
    """The remote user's audio, from whichever track is attached; silence while none is."""

    realtime = True

    def __init__(self) -> None:
        self._frames: asyncio.Queue[AudioFrame] = asyncio.Queue(INPUT_BACKLOG)
        self._stream: FrameStream | None = None
        self._reader: asyncio.Task[None] | None = None
        self.identity: str | None = None
        """Whose audio is attached (None: silence)."""
        self.frames_received = 0
        self.dropped_frames = 0
        self.first_audio_at: float | None = None
        """``time.monotonic()`` of the first frame from the room since the last ``attach()``."""

    @property
    def attached(self) -> bool:
        return self._stream is not None

    async def attach(self, identity: str, stream: FrameStream) -> None:
        """Hear ``stream`` from now on (the one attached before is let go)."""
        await self.detach()
        self.identity, self._stream, self.first_audio_at = identity, stream, None
        self._reader = asyncio.create_task(self._read(stream), name=f"room-input-{identity}")

    async def detach(self) -> None:
        stream, reader = self._stream, self._reader
        self._stream = self._reader = None
        self.identity = None
        await cancel_and_wait(reader)
        if stream is not None:
            await stream.aclose()

    async def _read(self, stream: FrameStream) -> None:
        pending: list[np.ndarray] = []
        want = int(BLOCK_SECONDS * SAMPLE_RATE)
        async for frame in stream:
            if self.first_audio_at is None:
                self.first_audio_at = time.monotonic()
            pending.append(frame.data)
            if sum(p.size for p in pending) < want:
                continue
            block = AudioFrame(np.concatenate(pending), SAMPLE_RATE)
            pending = []
            self.frames_received += 1
            if self._frames.full():  # the agent fell behind: the oldest goes, as a microphone's ring would
                self._frames.get_nowait()
                self.dropped_frames += 1
            self._frames.put_nowait(block)
        logger.info("room audio ended", extra={"participant": self.identity})

    async def _iterate(self) -> AsyncIterator[AudioFrame]:
        silence = AudioFrame(np.zeros(int(BLOCK_SECONDS * SAMPLE_RATE), np.int16), SAMPLE_RATE)
        next_silence = time.monotonic() + BLOCK_SECONDS
        while True:
            try:
                async with asyncio.timeout(max(0.0, next_silence - time.monotonic()) + BLOCK_SECONDS):
                    frame = await self._frames.get()
            except TimeoutError:  # no track, or it stalled: the room is quiet
                next_silence = max(next_silence + BLOCK_SECONDS, time.monotonic())
                yield silence
                continue
            next_silence = time.monotonic() + BLOCK_SECONDS
            yield frame

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._iterate()

    async def aclose(self) -> None:
        await self.detach()


class RoomAudioOutput(AudioOutput):
    """The agent's voice, published into the room through ``sink`` (swapped by ``set_sink`` on a reconnect)."""

    def __init__(self, sink: AudioSink | None, sample_rate: int) -> None:
        super().__init__(sample_rate)
        self._sink = sink
        self.latency = SINK_QUEUE_MS / 1000
        self._task: asyncio.Task[None] | None = None
        self._more = asyncio.Event()
        self.frames_sent = 0
        self.stalls = 0
        """Frames the sink took longer than ``CAPTURE_TIMEOUT`` to accept (dropped)."""

    def set_sink(self, sink: AudioSink | None) -> None:
        """Publish into ``sink`` from the next frame on (None: the room is away; audio is held)."""
        if self._sink is not None and sink is not self._sink:
            self._sink.clear_queue()
        self._sink = sink
        self._more.set()

    async def capture_frame(self, frame: AudioFrame) -> None:
        await super().capture_frame(frame)
        self._kick()

    def flush(self) -> int:
        segment = super().flush()
        self._kick()
        return segment

    def clear_buffer(self) -> None:
        super().clear_buffer()
        if self._sink is not None:
            self._sink.clear_queue()

    def pause(self) -> None:
        super().pause()
        if self._sink is not None:  # quiet now: what the source holds (at most SINK_QUEUE_MS) is not replayed
            self._sink.clear_queue()

    def resume(self) -> None:
        super().resume()
        self._kick()

    def _kick(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._pump(), name="room-output")
        self._more.set()

    async def _pump(self) -> None:
        block = self.sample_rate * FRAME_MS // 1000
        while True:
            self._more.clear()
            sink = self._sink
            if sink is None or not self.queue.available():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.1):
                        await self._more.wait()
                continue
            data = self.queue.read(block, delay=sink.queued_duration)
            try:
                async with asyncio.timeout(CAPTURE_TIMEOUT):
                    await sink.capture_frame(AudioFrame(data, self.sample_rate))
                self.frames_sent += 1
            except TimeoutError:
                self.stalls += 1
                logger.warning("room audio source stalled: frame dropped", extra={"seconds": CAPTURE_TIMEOUT})

    async def aclose(self) -> None:
        await super().aclose()
        await cancel_and_wait(self._task)
