"""The agent on a recording: the file-based main job (``converse``), the bench and the tests use it."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from appliance.agent import Agent, AgentSession, SessionOptions, TurnMetrics
from appliance.agent import events as ev
from appliance.agent.turns import WakeGate
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import AudioInput, BlockInput, FileInput, RecordingOutput
from appliance.audio.preroll import PreRoll
from appliance.audio.wav import read_blocks
from appliance.llm.base import LLM, ChatItem, ChatMessage, Role
from appliance.stt.base import STT
from appliance.tts.base import TTS
from appliance.vad.base import VAD, VADSettings
from appliance.wake.base import WakeDetected, WakeDetector

logger = logging.getLogger(__name__)

FEED_BLOCK = 0.1
"""Seconds of audio handed to a stage at a time when replaying a recording."""
TURN_TIMEOUT = 90.0
"""The longest a recording's conversation may take, from the first audio to the last reply audio."""
TRAILING_SILENCE = 1.0
"""Silence appended to a recording, so speech at its very end is still endpointed as it would be live."""


@dataclass
class TurnResult:
    """What happened on one recording: the user's (last) turn and the agent's reply."""

    wake_word: str | None = None
    wake_score: float = 0.0
    transcript: str = ""
    confidence: float = 0.0
    reply: str = ""
    audio: AudioFrame | None = None
    """The reply as played (earcons off)."""
    metrics: TurnMetrics | None = None
    endpointing_delay: float = 0.0
    history: list[ChatItem] = field(default_factory=list)

    @property
    def endpoint_to_first_audio(self) -> float | None:
        """Seconds from the end-of-turn decision to the first reply audio (what the machine adds)."""
        m = self.metrics
        if m is None or m.eos_to_first_audio is None or m.end_of_utterance_delay is None:
            return None
        return m.eos_to_first_audio - m.end_of_utterance_delay

    def as_dict(self) -> dict[str, object]:
        return {
            "wake_word": self.wake_word,
            "wake_score": round(self.wake_score, 3) if self.wake_word else None,
            "transcript": self.transcript,
            "confidence": round(self.confidence, 3),
            "reply": self.reply,
            "reply_audio_seconds": round(self.audio.seconds, 2) if self.audio else 0.0,
            "endpointing_delay": self.endpointing_delay,
            "endpoint_to_first_audio": round(v, 3) if (v := self.endpoint_to_first_audio) is not None else None,
            "metrics": self.metrics.as_dict() if self.metrics else None,
        }


async def converse(
    *,
    wake: WakeDetector | None,
    vad: VAD,
    stt: STT,
    llm: LLM,
    tts: TTS,
    audio: AudioFrame | Path,
    agent: Agent | None = None,
    realtime: bool = False,
) -> TurnResult:
    """Play a recording to the agent as its microphone and record what it says back.

    ``audio``: the recording, or the path of one of any length (read block by block as it is heard).
    ``realtime`` paces the recording and the speaker like live devices (latencies then mean what they
    mean live); otherwise both run as fast as the engines allow.
    """
    options = SessionOptions(require_wake_word=wake is not None, earcons=False)
    session = AgentSession(vad=vad, stt=stt, llm=llm, tts=tts, wake=wake, options=options)
    result = TurnResult(endpointing_delay=options.min_endpointing_delay)

    def on_wake(e: ev.WakeWordDetectedEvent) -> None:
        if result.wake_word is None:
            result.wake_word, result.wake_score = e.name, e.score

    def on_transcript(e: ev.UserInputTranscribedEvent) -> None:
        if e.is_final:
            result.transcript, result.confidence = e.transcript, e.confidence

    def on_item(e: ev.ConversationItemAddedEvent) -> None:
        if isinstance(e.item, ChatMessage) and e.item.role is Role.ASSISTANT:
            result.reply = e.item.content

    def on_metrics(e: ev.MetricsCollectedEvent) -> None:
        result.metrics = e.metrics

    session.on(ev.EventType.WAKE_WORD_DETECTED, on_wake)
    session.on(ev.EventType.USER_INPUT_TRANSCRIBED, on_transcript)
    session.on(ev.EventType.CONVERSATION_ITEM_ADDED, on_item)
    session.on(ev.EventType.METRICS_COLLECTED, on_metrics)
    output = RecordingOutput(tts.sample_rate, realtime=realtime)
    source: AudioInput
    if isinstance(audio, Path):
        path = audio
        source = BlockInput(lambda: read_blocks(path), realtime=realtime, trailing_silence=TRAILING_SILENCE)
    else:
        source = FileInput(audio, realtime=realtime, trailing_silence=TRAILING_SILENCE)
    try:
        await session.start(agent or Agent(), audio_input=source, audio_output=output)
        await asyncio.wait_for(session.drain(), TURN_TIMEOUT)
    finally:
        await session.aclose()
        await output.aclose()
    played = output.audio
    if played.samples_per_channel and result.reply:
        result.audio = _trim_silence(played)
    result.history = list(session.chat_ctx.items)
    return result


def _trim_silence(audio: AudioFrame) -> AudioFrame:
    """Drop the leading and trailing digital silence a real-time speaker records."""
    nonzero = (audio.data != 0).nonzero()[0]
    if not nonzero.size:
        return AudioFrame(audio.data[:0], audio.sample_rate)
    return AudioFrame(audio.data[nonzero[0] : nonzero[-1] + 1], audio.sample_rate)


GATE_WINDOW = 0.08
"""Seconds of audio per loudness decision of the file gate (one wake-model chunk)."""


async def detect_wake_in_file(
    detector: WakeDetector, path: Path, floor_dbfs: float = VADSettings.energy_floor
) -> list[WakeDetected]:
    """Every wake detection in a recording of any length, read in blocks: the wake model only hears the
    stretches louder than ``floor_dbfs`` (with the gate's pre-roll), so hours of quiet cost little, and memory
    is one block's."""
    gate = WakeGate(0.5, 2.5, 2.0)
    ring = PreRoll(12.0)
    floor = (10 ** (floor_dbfs / 20) * 32768.0) ** 2
    window = int(GATE_WINDOW * SAMPLE_RATE)
    scorer = detector.scorer()
    found: list[WakeDetected] = []
    try:
        for block in read_blocks(path):
            ring.push(block)
            start = ring.end - block.samples_per_channel
            for i in range(0, block.samples_per_channel - window + 1, window):
                samples = block.data[i : i + window].astype(np.float32)
                loud = float(np.dot(samples, samples)) / window >= floor
                span = gate.update((start + i + window) / SAMPLE_RATE, 1.0 if loud else 0.0)
                if span is None:
                    continue
                for d in await scorer.score([ring.between(*span)]):
                    at = gate.stream_position(d.timestamp) / SAMPLE_RATE
                    found.append(dataclasses.replace(d, timestamp=at))
    finally:
        await scorer.aclose()
    return found


async def detect_wake(detector: WakeDetector, audio: AudioFrame) -> list[WakeDetected]:
    """Every wake detection in a recording."""
    stream = detector.stream()
    try:
        for block in audio.split(int(FEED_BLOCK * SAMPLE_RATE)):
            stream.push_frame(block)
        stream.end_input()
        return [e async for e in stream]
    finally:
        await stream.aclose()
