"""Streaming recognition from a whole-utterance STT and a VAD that cuts the utterances."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from appliance.audio.frame import AudioFrame, merge_frames
from appliance.stt.base import SpeechEvent, SpeechEventType
from appliance.stt.whispercpp import WhisperCppSTT
from appliance.utils.aio import Channel, EventStream, cancel_and_wait
from appliance.vad.base import VADEvent, VADEventType

logger = logging.getLogger(__name__)


class SpeechStream:
    """push_frame / flush / end_input / aclose, iterated for start, end and final-transcript events.

    ``eos_wall_time`` of the last END_OF_SPEECH lets a caller measure end of speech -> reply.
    """

    def __init__(self, stt: WhisperCppSTT, vad_stream: EventStream[AudioFrame, VADEvent]) -> None:
        self._stt = stt
        self._vad = vad_stream
        self._output: Channel[SpeechEvent] = Channel()
        self.eos_wall_time: float | None = None
        self._task = asyncio.create_task(self._run(), name="speech-stream")

    def push_frame(self, frame: AudioFrame) -> None:
        self._vad.push_frame(frame)

    def flush(self) -> None:
        self._vad.flush()

    def end_input(self) -> None:
        self._vad.end_input()

    async def _run(self) -> None:
        try:
            async for ev in self._vad:
                if ev.type is VADEventType.START_OF_SPEECH:
                    self._output.send(SpeechEvent(SpeechEventType.START_OF_SPEECH, ev.timestamp))
                elif ev.type is VADEventType.END_OF_SPEECH:
                    self.eos_wall_time = time.perf_counter()
                    self._output.send(SpeechEvent(SpeechEventType.END_OF_SPEECH, ev.timestamp))
                    utterance = merge_frames(ev.frames)
                    if utterance.samples_per_channel == 0:
                        continue
                    final = await self._stt.recognize(utterance, start_time=ev.speech_start)
                    if final.alternatives and final.alternatives[0].text:
                        self._output.send(final)
        except Exception as exc:
            self._output.fail(exc)
        finally:
            self._output.close()

    def __aiter__(self) -> AsyncIterator[SpeechEvent]:
        return self

    async def __anext__(self) -> SpeechEvent:
        return await self._output.__anext__()

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        await self._vad.aclose()
