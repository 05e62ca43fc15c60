"""The SDK's audio objects in the bridge's shapes: ``rtc.AudioSource`` as an ``AudioSink``, and a remote (or
local) ``rtc.AudioTrack`` as a ``FrameStream`` of 16 kHz mono frames."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import numpy as np
from livekit import rtc

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.bridge.audio import SINK_QUEUE_MS

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 2.0
"""Seconds the SDK may take to let a stream go."""
STREAM_FRAME_MS = 20
"""The frames the agent reads: the SDK's stream regroups its 10 ms frames."""


class LiveKitSink:
    """An ``rtc.AudioSource`` with a short queue (``SINK_QUEUE_MS``), fed our frames."""

    def __init__(self, sample_rate: int, *, queue_ms: int = SINK_QUEUE_MS) -> None:
        self.source = rtc.AudioSource(sample_rate, 1, queue_size_ms=queue_ms)

    @property
    def sample_rate(self) -> int:
        return self.source.sample_rate

    @property
    def queued_duration(self) -> float:
        return self.source.queued_duration

    async def capture_frame(self, frame: AudioFrame) -> None:
        data = np.ascontiguousarray(frame.data, dtype=np.int16)
        await self.source.capture_frame(rtc.AudioFrame(data.tobytes(), frame.sample_rate, 1, frame.samples_per_channel))

    def clear_queue(self) -> None:
        self.source.clear_queue()

    def track(self, name: str) -> rtc.LocalAudioTrack:
        """A local track carrying this source (to publish, or to hear back in a local loop)."""
        return rtc.LocalAudioTrack.create_audio_track(name, self.source)

    async def aclose(self) -> None:
        await self.source.aclose()


class TrackStream:
    """An audio track as 16 kHz mono frames: the SDK's ``AudioStream`` resamples (libwebrtc's resampler) and
    regroups the network's 10 ms frames into ``STREAM_FRAME_MS``."""

    def __init__(self, track: rtc.Track) -> None:
        self._stream = rtc.AudioStream.from_track(
            track=track, sample_rate=SAMPLE_RATE, num_channels=1, frame_size_ms=STREAM_FRAME_MS
        )

    async def _frames(self) -> AsyncIterator[AudioFrame]:
        async for event in self._stream:
            frame = event.frame
            yield AudioFrame(np.frombuffer(frame.data, np.int16).copy(), frame.sample_rate)

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()

    async def aclose(self) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self._stream.aclose()
        except TimeoutError:
            logger.warning("room audio stream did not close", extra={"seconds": CLOSE_TIMEOUT})
