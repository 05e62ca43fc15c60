"""The hearing half of the agent: audio in -> VAD -> (gated) wake word -> utterances, as callbacks."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import dataclass
from typing import Protocol

from appliance.agent.turns import WakeGate
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import AudioInput
from appliance.audio.preroll import PreRoll
from appliance.utils.aio import EventStream, cancel_and_wait
from appliance.vad.base import VADEvent, VADEventType, VADSettings
from appliance.vad.silero import SileroVAD
from appliance.wake.base import WakeDetected
from appliance.wake.openwakeword import OpenWakeWordDetector

logger = logging.getLogger(__name__)

MAX_BACKLOG = 1.0
"""Seconds of audio the reader may get ahead of the VAD before it waits (a file is read this far ahead)."""
RING_SECONDS = 12.0


@dataclass(frozen=True)
class Utterance:
    """What the user said between two silences."""

    audio: AudioFrame
    start: int
    """Stream position (samples) of the first sample of ``audio``."""
    speech_duration: float
    eos_time: float
    """``time.time()`` when the last voiced audio was captured."""
    decided_at: float
    """``time.time()`` when the silence was judged long enough to end the turn."""

    @property
    def key(self) -> tuple[int, int]:
        """(start, length in samples): the same for the early and the final view of one utterance."""
        return self.start, self.audio.samples_per_channel

    def after(self, position: int) -> AudioFrame:
        """The part of the utterance after stream position ``position``."""
        skip = min(max(0, position - self.start), self.audio.samples_per_channel)
        return AudioFrame(self.audio.data[skip:], SAMPLE_RATE)


class Hearing(Protocol):
    """What the listener tells the session."""

    def on_wake(self, detection: WakeDetected, position: int) -> None: ...
    def on_speech_start(self) -> None: ...
    def on_speech_progress(self, speech_duration: float) -> None: ...
    def on_speech_pause(self, utterance: Utterance) -> None: ...
    def on_speech_end(self, utterance: Utterance) -> None: ...
    def on_input_error(self, error: Exception) -> None: ...


class Listener:
    """Reads the input, runs the VAD on everything and the wake model only when the gate is open."""

    def __init__(
        self,
        audio: AudioInput,
        vad: SileroVAD,
        vad_settings: VADSettings,
        wake: OpenWakeWordDetector | None,
        gate: WakeGate,
        hearing: Hearing,
    ) -> None:
        self._input = audio
        self._vad = vad
        self._vad_settings = vad_settings
        self._wake = wake
        self._tracker = wake.tracker() if wake else None
        self._gate = gate
        self._hearing = hearing
        self._ring = PreRoll(RING_SECONDS)
        self._arrivals: collections.deque[tuple[int, float]] = collections.deque(maxlen=1024)
        self._vad_pos = 0
        self._progress = asyncio.Event()
        self._speaking = False
        self.wake_enabled = wake is not None
        """The session switches the wake model off while it is not waiting for the wake word."""

    async def run(self) -> None:
        stream = self._vad.stream(self._vad_settings)
        reader = asyncio.create_task(self._read(stream), name="listener-read")
        try:
            await self._consume(stream)
        finally:
            await cancel_and_wait(reader)
            await stream.aclose()

    async def _read(self, stream: EventStream[AudioFrame, VADEvent]) -> None:
        try:
            async for frame in self._input:
                self._ring.push(frame)
                self._arrivals.append((self._ring.end, time.time()))
                stream.push_frame(frame)
                while self._ring.end - self._vad_pos > MAX_BACKLOG * SAMPLE_RATE:
                    self._progress.clear()
                    await self._progress.wait()
        except Exception as exc:
            logger.exception("audio input failed")
            self._hearing.on_input_error(exc)
        finally:
            stream.end_input()

    async def _consume(self, stream: EventStream[AudioFrame, VADEvent]) -> None:
        async for ev in stream:
            self._vad_pos = round(ev.timestamp * SAMPLE_RATE)
            self._progress.set()
            if ev.type is VADEventType.INFERENCE_DONE:
                await self._score_wake(ev)
                if self._speaking:
                    self._hearing.on_speech_progress(ev.speech_duration)
            elif ev.type is VADEventType.START_OF_SPEECH:
                self._speaking = True
                self._hearing.on_speech_start()
            elif ev.type is VADEventType.SPEECH_PAUSED:
                self._hearing.on_speech_pause(self._utterance(ev))
            elif ev.type is VADEventType.END_OF_SPEECH:
                self._speaking = False
                self._hearing.on_speech_end(self._utterance(ev))

    async def _score_wake(self, ev: VADEvent) -> None:
        if self._wake is None or self._tracker is None or not self.wake_enabled:
            return
        span = self._gate.update(ev.timestamp, ev.probability)
        if span is None:
            return
        audio = self._ring.between(*span)
        for detection in await self._wake.detect(self._tracker, [audio]):
            self._hearing.on_wake(detection, self._gate.stream_position(detection.timestamp))

    def _utterance(self, ev: VADEvent) -> Utterance:
        eos = round((ev.timestamp - ev.silence_duration) * SAMPLE_RATE)
        start = round(ev.frames_start * SAMPLE_RATE)
        return Utterance(ev.frames[0], start, ev.speech_duration, self._arrival(eos), time.time())

    def _arrival(self, position: int) -> float:
        """When the sample at ``position`` came in (for a live input, when it was spoken)."""
        found: float | None = None
        for end, at in reversed(self._arrivals):
            if end < position:
                break
            found = at
        return found if found is not None else time.time()
