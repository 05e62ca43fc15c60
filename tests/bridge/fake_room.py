"""An in-memory room behind the same narrow interface (``RoomLink``) the ``rtc.Room`` wrapper implements: the
room logic (join, pick the user, leave and come back, reconnect) runs on it without a server.

Participants' audio is fed in real time, 20 ms at a time; what the device publishes is kept, paced like a real
source (it takes a frame's duration to accept a frame).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.bridge.audio import AudioSink
from appliance.bridge.room import RoomEvent, RoomEventKind, RoomLink
from appliance.errors import BridgeError

FRAME = SAMPLE_RATE // 50


async def until(condition: Callable[[], Any], within: float = 10.0) -> None:
    """Until ``condition()`` holds, checked every 20 ms; fails the test after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


class FakeSink:
    """The device's published track: what it was given, how often it was cleared."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self.frames: list[np.ndarray] = []
        self.cleared = 0
        self.queued_duration = 0.0

    async def capture_frame(self, frame: AudioFrame) -> None:
        await asyncio.sleep(frame.seconds)
        self.frames.append(frame.data.copy())

    def clear_queue(self) -> None:
        self.cleared += 1

    def loud_seconds(self) -> float:
        return sum(f.size for f in self.frames if np.abs(f).max() > 1000) / self.sample_rate


class FakeTrack:
    """A participant's microphone as the device hears it."""

    def __init__(self) -> None:
        self.frames: asyncio.Queue[AudioFrame | None] = asyncio.Queue()
        self.closed = False

    async def _iterate(self) -> AsyncIterator[AudioFrame]:
        while (frame := await self.frames.get()) is not None:
            yield frame

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._iterate()

    async def aclose(self) -> None:
        self.closed = True
        self.frames.put_nowait(None)


class FakeRoom(RoomLink):
    def __init__(self) -> None:
        super().__init__()
        self.present: dict[str, bool] = {}
        """Identity -> whether its microphone is subscribed."""
        self.tracks: dict[str, FakeTrack] = {}
        self.sinks: list[FakeSink] = []
        self.attributes: list[dict[str, str]] = []
        self.texts: list[tuple[str, str, dict[str, str]]] = []
        self.connects = 0
        self.connected = False
        self.fail_connect: list[BridgeError] = []
        """Errors the next connects raise, one each."""

    async def connect(self) -> None:
        self.connects += 1
        if self.fail_connect:
            raise self.fail_connect.pop(0)
        self.connected = True

    async def disconnect(self) -> None:
        self.connected = False

    def participants(self) -> list[str]:
        return list(self.present)

    def has_audio(self, identity: str) -> bool:
        return self.present.get(identity, False)

    def open_audio(self, identity: str) -> FakeTrack:
        track = self.tracks[identity] = FakeTrack()
        return track

    def audio_track_id(self, identity: str | None) -> str:
        return f"TR_{identity or 'device'}"

    async def publish_audio(self, sample_rate: int) -> AudioSink:
        sink = FakeSink(sample_rate)
        self.sinks.append(sink)
        return sink

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self.attributes.append(attributes)

    async def send_text(self, topic: str, text: str, attributes: dict[str, str]) -> None:
        self.texts.append((topic, text, attributes))

    # --- what the test does to the room ---

    def join(self, identity: str) -> None:
        self.present[identity] = True
        self.events.put_nowait(RoomEvent(RoomEventKind.PARTICIPANT_JOINED, identity))
        self.events.put_nowait(RoomEvent(RoomEventKind.AUDIO_AVAILABLE, identity))

    def leave(self, identity: str) -> None:
        del self.present[identity]
        self.events.put_nowait(RoomEvent(RoomEventKind.PARTICIPANT_LEFT, identity))

    def drop(self, reason: str = "server went away") -> None:
        """The connection is gone for good, as the SDK reports it: everyone with it."""
        self.connected = False
        self.present.clear()
        self.events.put_nowait(RoomEvent(RoomEventKind.DISCONNECTED, reason=reason))

    async def speak(self, identity: str, audio: np.ndarray) -> None:
        """``identity`` says ``audio`` (16 kHz), in real time."""
        track = self.tracks[identity]
        for start in range(0, audio.size, FRAME):
            await asyncio.sleep(FRAME / SAMPLE_RATE)
            if not track.closed:
                track.frames.put_nowait(AudioFrame(audio[start : start + FRAME], SAMPLE_RATE))

    @property
    def sink(self) -> FakeSink:
        return self.sinks[-1]

    def captions(self, track: str) -> list[str]:
        return [
            t for topic, t, a in self.texts if a["lk.transcribed_track_id"] == track and topic == "lk.transcription"
        ]
