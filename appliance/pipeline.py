"""The whole local chain on a recording: wake word -> VAD -> STT -> LLM -> TTS."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.llm.base import ChatContext, LLMMetrics, Role
from appliance.llm.llamacpp import LlamaCppLLM
from appliance.stt.base import SpeechEventType, STTMetrics
from appliance.stt.stream_adapter import SpeechStream
from appliance.stt.whispercpp import WhisperCppSTT
from appliance.tts.base import TTSMetrics
from appliance.tts.piper import PiperTTS
from appliance.vad.silero import SileroVAD
from appliance.wake.base import WakeDetected
from appliance.wake.openwakeword import OpenWakeWordDetector

logger = logging.getLogger(__name__)

DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant running on a small device. "
    "Answer in one or two short, plain sentences that sound natural when spoken."
)
FEED_BLOCK = 0.1
"""Seconds of audio handed to a stage at a time when replaying a recording."""
TURN_TIMEOUT = 60.0
"""The longest one turn may take, from the first audio to the last reply audio."""


@dataclass
class TurnResult:
    """What happened in one turn, and how long each part took."""

    wake: WakeDetected | None = None
    transcript: str = ""
    confidence: float = 0.0
    reply: str = ""
    audio: AudioFrame | None = None
    stt: STTMetrics | None = None
    llm: LLMMetrics | None = None
    tts: TTSMetrics | None = None
    eos_to_first_audio: float | None = None
    """Wall seconds from the VAD's end-of-speech decision to the first reply audio."""
    endpointing_delay: float = 0.0
    """Silence the VAD waits for before deciding the user is done (added to the above for the user)."""
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {
            "wake_word": self.wake.name if self.wake else None,
            "wake_score": round(self.wake.score, 3) if self.wake else None,
            "wake_time": round(self.wake.timestamp, 2) if self.wake else None,
            "transcript": self.transcript,
            "confidence": round(self.confidence, 3),
            "reply": self.reply,
            "reply_audio_seconds": round(self.audio.seconds, 2) if self.audio else 0.0,
            "stt_latency": round(self.stt.duration, 3) if self.stt else None,
            "llm_ttft": round(self.llm.ttft, 3) if self.llm else None,
            "llm_tokens_per_second": round(self.llm.tokens_per_second, 1) if self.llm else None,
            "tts_ttfb": round(self.tts.ttfb, 3) if self.tts else None,
            "eos_to_first_audio": round(self.eos_to_first_audio, 3) if self.eos_to_first_audio else None,
            "endpointing_delay": self.endpointing_delay,
        }


async def _feed(stream: SpeechStream, audio: AudioFrame) -> None:
    for block in audio.split(int(FEED_BLOCK * SAMPLE_RATE)):
        stream.push_frame(block)
        await asyncio.sleep(0)  # let the stage take blocks as they come, as from a microphone
    stream.end_input()


async def detect_wake(detector: OpenWakeWordDetector, audio: AudioFrame) -> list[WakeDetected]:
    """Every wake detection in a recording."""
    stream = detector.stream()
    try:
        for block in audio.split(int(FEED_BLOCK * SAMPLE_RATE)):
            stream.push_frame(block)
        stream.end_input()
        return [ev async for ev in stream]
    finally:
        await stream.aclose()


class LocalChain:
    """The five engines wired for one turn on a recording (the file-based main job)."""

    def __init__(
        self,
        wake: OpenWakeWordDetector | None,
        vad: SileroVAD,
        stt: WhisperCppSTT,
        llm: LlamaCppLLM,
        tts: PiperTTS,
        instructions: str = DEFAULT_INSTRUCTIONS,
    ) -> None:
        self.wake, self.vad, self.stt, self.llm, self.tts = wake, vad, stt, llm, tts
        self.chat_ctx = ChatContext()
        self.chat_ctx.add_message(Role.SYSTEM, instructions)

    def warm_up(self) -> None:
        """Prime the LLM's cache with the instructions (what the daemon does at start)."""
        self.llm.warm_up(self.chat_ctx)

    async def run(self, audio: AudioFrame, *, require_wake: bool = True) -> TurnResult:
        return await asyncio.wait_for(self._run(audio, require_wake), TURN_TIMEOUT)

    async def _run(self, audio: AudioFrame, require_wake: bool) -> TurnResult:
        result = TurnResult(endpointing_delay=self.vad.settings.min_silence_duration)
        start = 0
        if require_wake:
            if self.wake is None:
                raise ValueError("require_wake needs a wake detector")
            detections = await detect_wake(self.wake, audio)
            if not detections:
                return result
            result.wake = detections[0]
            start = int(result.wake.timestamp * SAMPLE_RATE)
        rest = AudioFrame(audio.data[start:], SAMPLE_RATE)
        stream = SpeechStream(self.stt, self.vad.stream())
        feeder = asyncio.create_task(_feed(stream, rest), name="chain-feed")
        try:
            async for ev in stream:
                if ev.type is SpeechEventType.FINAL_TRANSCRIPT:
                    result.transcript = ev.alternatives[0].text
                    result.confidence = ev.alternatives[0].confidence
                    result.stt = ev.metrics
                    break
        finally:
            feeder.cancel()
            await asyncio.gather(feeder, return_exceptions=True)
            await stream.aclose()
        if not result.transcript:
            return result
        await self._reply(result, stream.eos_wall_time or time.perf_counter())
        return result

    async def _reply(self, result: TurnResult, eos_wall: float) -> None:
        self.chat_ctx.add_message(Role.USER, result.transcript)
        llm_stream = self.llm.chat(self.chat_ctx)
        tts_stream = self.tts.stream()
        pieces: list[np.ndarray] = []

        async def pump() -> None:
            async for chunk in llm_stream:
                tts_stream.push_text(chunk.delta)
            tts_stream.end_input()

        pump_task = asyncio.create_task(pump(), name="chain-llm-to-tts")
        try:
            async for audio in tts_stream:
                if result.eos_to_first_audio is None:
                    result.eos_to_first_audio = time.perf_counter() - eos_wall
                pieces.append(audio.frame.data)
            await pump_task
        finally:
            if not pump_task.done():
                pump_task.cancel()
                await asyncio.gather(pump_task, return_exceptions=True)
            await llm_stream.aclose()
            await tts_stream.aclose()
        result.reply = llm_stream.text.strip()
        result.llm, result.tts = llm_stream.metrics, tts_stream.metrics
        result.audio = AudioFrame(np.concatenate(pieces) if pieces else np.zeros(0, np.int16), self.tts.sample_rate)
        self.chat_ctx.add_message(Role.ASSISTANT, result.reply)
