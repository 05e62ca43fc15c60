"""Relay mode: the device's microphone and speaker in a room, for a remote agent or person to use.

The microphone (after echo cancellation, so the room does not hear itself come back) is published as the
device's track at 16 kHz; the first remote participant with a microphone (or ``livekit.participant``) is
played on the speaker, in segments of ``PLAY_SEGMENT`` seconds so a local announcement (a timer) can still
get a word in. The local assistant steps aside meanwhile: it hears the microphone only to catch its wake word
("hey jarvis, hang up"). The relay ends when it is hung up (cancelled), or when nobody has been in the room
for ``user_grace`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import AudioOutput
from appliance.bridge.aside import AsideInput
from appliance.bridge.audio import AudioSink
from appliance.bridge.room import RoomEventKind, RoomLink
from appliance.config.livekit import LiveKitConfig
from appliance.utils.aio import cancel_and_wait

logger = logging.getLogger(__name__)

PLAY_SEGMENT = 0.5
"""Seconds of the room's audio per speaker segment."""
MAX_LAG = 0.3
"""Seconds of the room's audio the speaker may have queued; past it, frames are dropped to stay live."""
MIC_BACKLOG = 25
"""Microphone frames (0.5 s) held for a room that is slow to take them; older ones are dropped."""
SEND_TIMEOUT = 2.0


class Relay:
    def __init__(
        self,
        link: RoomLink,
        config: LiveKitConfig,
        aside: AsideInput,
        speaker: AudioOutput,
        *,
        hear_wake_word: bool,
    ) -> None:
        self.link = link
        self.config = config
        self.aside = aside
        self.speaker = speaker
        self.hear_wake_word = hear_wake_word
        self._mic: asyncio.Queue[AudioFrame] = asyncio.Queue(MIC_BACKLOG)
        self.remote: str | None = None
        self.frames_sent = 0
        self.frames_played = 0
        self.frames_dropped = 0

    async def run(self) -> str:
        """Until hung up (cancel) or the room stays empty; returns why it ended."""
        await self.link.connect()
        tasks: list[asyncio.Task[None]] = []
        play: asyncio.Task[None] | None = None
        try:
            sink = await self.link.publish_audio(SAMPLE_RATE)
            self.aside.step_aside(self._tap, hear=self.hear_wake_word)
            tasks.append(asyncio.create_task(self._send(sink), name="relay-mic"))
            empty_since: float | None = time.monotonic()
            logger.info("relay started")
            while True:
                wanted = self._wanted()
                if wanted != self.remote:
                    await cancel_and_wait(play)
                    play, self.remote = None, wanted
                    if wanted is not None:
                        play = asyncio.create_task(self._play(wanted), name="relay-speaker")
                        logger.info("relay hears participant", extra={"participant": wanted})
                empty_since = None if self.link.participants() else (empty_since or time.monotonic())
                timeout = None
                if empty_since is not None:
                    timeout = max(0.0, empty_since + self.config.user_grace - time.monotonic())
                try:
                    async with asyncio.timeout(timeout):
                        event = await self.link.events.get()
                except TimeoutError:
                    return "the room stayed empty"
                if event.kind is RoomEventKind.DISCONNECTED:
                    return f"the room connection was lost ({event.reason})"
        finally:
            self.aside.come_back()
            await cancel_and_wait(play, *tasks)
            self.speaker.flush()
            await self.link.disconnect()
            logger.info("relay ended")

    def _wanted(self) -> str | None:
        there = [p for p in self.link.participants() if self.link.has_audio(p)]
        if self.config.participant:
            return self.config.participant if self.config.participant in there else None
        return self.remote if self.remote in there else (there[0] if there else None)

    def _tap(self, frame: AudioFrame) -> None:
        if self._mic.full():
            self._mic.get_nowait()
            self.frames_dropped += 1
        self._mic.put_nowait(frame)

    async def _send(self, sink: AudioSink) -> None:
        while True:
            frame = await self._mic.get()
            try:
                async with asyncio.timeout(SEND_TIMEOUT):
                    await sink.capture_frame(frame)
                self.frames_sent += 1
            except TimeoutError:
                self.frames_dropped += 1

    async def _play(self, identity: str) -> None:
        stream = self.link.open_audio(identity)
        played = 0.0
        lag = int(MAX_LAG * self.speaker.sample_rate)
        try:
            async for frame in stream:
                if self.speaker.queue.available() > lag:
                    self.frames_dropped += 1
                    continue
                await self.speaker.capture_frame(frame)
                self.frames_played += 1
                played += frame.seconds
                if played >= PLAY_SEGMENT:
                    self.speaker.flush()
                    played = 0.0
        finally:
            await stream.aclose()
