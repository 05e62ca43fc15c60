"""Scripted engines: a second implementation of every stage interface, for driving the real session through
what real models cannot do on cue (fail mid-reply, hang, time out).

The audio they understand is synthetic and says so: the "wake phrase" is a block of constant samples
(``WAKE_LEVEL``), "speech" is noise, silence is zeros. The VAD is a real energy detector on the shared
windowed segmenter; the rest follow a script the test sets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.errors import APIError
from appliance.llm.base import LLM, ChatChunk, ChatContext, LLMCapabilities, LLMMetrics, LLMStream, ToolSpec
from appliance.stt.base import STT, SpeechData, SpeechEvent, SpeechEventType, STTCapabilities, STTMetrics
from appliance.tts.base import TTS, SynthesizeStream, TTSCapabilities
from appliance.tts.stream import SentenceSynthesizeStream
from appliance.turn.base import TurnDetector, TurnSettings
from appliance.utils.worker import Worker
from appliance.vad.base import VAD, VADCapabilities, VADSettings, VADStream
from appliance.vad.stream import WindowedVADStream
from appliance.wake.base import WakeCapabilities, WakeDetected, WakeDetector, WakeScorer, WakeSettings, WakeStream

WAKE_LEVEL = 12345
"""The scripted wake phrase: samples of exactly this value."""
WINDOW = 512
CHUNK = 1280


def wake_phrase(seconds: float = 0.6) -> np.ndarray:
    return np.full(int(seconds * SAMPLE_RATE), WAKE_LEVEL, np.int16)


def speech(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise loud enough for the energy VAD: the scripted user's words."""
    return np.random.default_rng(seed).normal(0, 3000, int(seconds * SAMPLE_RATE)).astype(np.int16)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.int16)


def clip(*parts: np.ndarray) -> AudioFrame:
    return AudioFrame(np.concatenate(parts), SAMPLE_RATE)


class EnergyVAD(VAD):
    """Speech wherever a window is louder than -50 dBFS. ``fail_once`` makes its first stream fail."""

    capabilities = VADCapabilities(SAMPLE_RATE, WINDOW / SAMPLE_RATE)

    def __init__(self, settings: VADSettings | None = None) -> None:
        self.settings = settings or VADSettings()
        self._worker = Worker("energy-vad")
        self.fail_once = False
        self.streams = 0

    def stream(self, settings: VADSettings | None = None) -> VADStream:
        self.streams += 1
        fail, self.fail_once = self.fail_once, False
        windows = 0

        def score(window: np.ndarray) -> float:
            nonlocal windows
            windows += 1
            if fail and windows > 10:
                raise RuntimeError("scripted VAD failure")
            rms = float(np.sqrt(np.mean(np.square(window.astype(np.float64)))))
            return 1.0 if rms > 100 else 0.0

        return WindowedVADStream(self._worker, settings or self.settings, score, WINDOW)

    def close(self) -> None:
        self._worker.close()


class ScriptedWake(WakeDetector):
    """Fires at the end of a run of ``WAKE_LEVEL`` chunks. ``fail_once`` makes the next scoring call raise."""

    capabilities = WakeCapabilities(SAMPLE_RATE, CHUNK / SAMPLE_RATE)
    settings = WakeSettings()

    def __init__(self) -> None:
        self.fail_once = False

    @property
    def names(self) -> tuple[str, ...]:
        return ("scripted",)

    def stream(self) -> WakeStream:
        raise NotImplementedError("the session uses scorers")

    def scorer(self) -> WakeScorer:
        return _Scorer(self)


class _Scorer(WakeScorer):
    def __init__(self, wake: ScriptedWake) -> None:
        self._wake = wake
        self._fed = 0
        self._last = -10.0
        self._pending = np.zeros(0, np.int16)
        self._phrase_end: float | None = None

    async def score(self, frames: list[AudioFrame]) -> list[WakeDetected]:
        if self._wake.fail_once:
            self._wake.fail_once = False
            raise APIError("scripted wake failure", retryable=True)
        out = []
        self._pending = np.concatenate([self._pending, *(f.data for f in frames)])
        whole = self._pending.size - self._pending.size % CHUNK
        for i in range(0, whole, CHUNK):
            self._fed += CHUNK
            t = self._fed / SAMPLE_RATE
            if np.all(self._pending[i : i + CHUNK] == WAKE_LEVEL):
                self._phrase_end = t
            elif self._phrase_end is not None:  # fires where the phrase ended, as a real model does
                if self._phrase_end - self._last > 2.0:
                    self._last = self._phrase_end
                    out.append(WakeDetected("scripted", 1.0, self._phrase_end))
                self._phrase_end = None
        self._pending = self._pending[whole:]
        return out


@dataclass
class ScriptedSTT(STT):
    """Answers ``text(audio)``; ``mode`` "fail" raises, "hang" never answers (until cancelled)."""

    text: Callable[[AudioFrame], str] = lambda audio: "what time is it"
    mode: str = "ok"
    calls: int = 0
    cancelled: int = 0
    capabilities: STTCapabilities = field(default_factory=STTCapabilities)

    async def recognize(self, audio: AudioFrame, *, start_time: float = 0.0) -> SpeechEvent:
        self.calls += 1
        try:
            if self.mode == "hang":
                await asyncio.Event().wait()
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.mode == "fail":
            raise APIError("scripted STT failure", retryable=True)
        data = SpeechData(self.text(audio), "en", 0.9, start_time, start_time + audio.seconds)
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, data.end_time, (data,), STTMetrics(audio.seconds, 0.01, 0))


class ScriptedLLM(LLM):
    """Streams ``reply`` word by word; ``fail_after`` words then raises; ``hang`` never starts."""

    capabilities = LLMCapabilities(streaming=True, tool_calling=False)

    def __init__(self, reply: str = "It is noon. Time for lunch.") -> None:
        self.reply = reply
        self.fail_after: int | None = None
        self.hang = False
        self.seen: list[ChatContext] = []
        self.asked_at: list[float] = []
        """``time.time()`` of each request."""
        self.stopped = 0
        self.prefilled: list[ChatContext] = []
        """The conversation of each ``prefill``, in order (with the requests' in ``log``)."""
        self.log: list[str] = []
        """"prefill" and "chat", in the order they came."""

    async def prefill(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> None:
        self.prefilled.append(chat_ctx.copy())
        self.log.append("prefill")

    def chat(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> LLMStream:
        self.log.append("chat")
        self.seen.append(chat_ctx.copy())
        self.asked_at.append(time.time())
        return _LLMStream(self, f"scripted_{len(self.seen)}")


class _LLMStream(LLMStream):
    def __init__(self, llm: ScriptedLLM, request_id: str) -> None:
        self._llm = llm
        self.request_id = request_id
        self.metrics: LLMMetrics | None = None
        self._words = [w + " " for w in llm.reply.split()]
        self._text: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._text)

    async def __anext__(self) -> ChatChunk:
        if self._llm.hang:
            await asyncio.Event().wait()
        await asyncio.sleep(0.005)
        if self._llm.fail_after is not None and len(self._text) >= self._llm.fail_after:
            raise APIError("scripted LLM failure mid-reply", retryable=True)
        if len(self._text) == len(self._words):
            self.metrics = LLMMetrics(self.request_id, 0.005, 0.01, 10, len(self._text), False)
            raise StopAsyncIteration
        word = self._words[len(self._text)]
        self._text.append(word)
        return ChatChunk(word, self.request_id)

    async def aclose(self) -> None:
        self._llm.stopped += 1


class ScriptedTTS(TTS):
    """A 440 Hz tone, 60 ms per character, at 16 kHz; ``hang`` never answers, ``fail`` raises."""

    capabilities = TTSCapabilities(streaming=False, sample_rate=SAMPLE_RATE)

    def __init__(self) -> None:
        self.hang = False
        self.fail = False
        self.spoken: list[str] = []
        self._n = 0

    def stream(self) -> SynthesizeStream:
        self._n += 1
        return SentenceSynthesizeStream(self._speak, f"scripted_tts_{self._n}")

    async def _speak(self, text: str) -> AudioFrame:
        if self.hang:
            await asyncio.Event().wait()
        if self.fail:
            raise APIError("scripted TTS failure", retryable=False)
        self.spoken.append(text)
        t = np.arange(int(0.06 * len(text) * SAMPLE_RATE)) / SAMPLE_RATE
        return AudioFrame((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16), SAMPLE_RATE)


class ScriptedTurn(TurnDetector):
    """Finds an utterance complete when ``complete(audio)`` says so; "fail" raises, "hang" never answers."""

    label = "scripted-turn"

    def __init__(self, complete: Callable[[AudioFrame], bool] = lambda audio: True) -> None:
        self.settings = TurnSettings()
        self.judge = complete
        self.mode = "ok"
        self.heard: list[float] = []
        """Seconds of audio of each utterance judged."""

    async def completion(self, audio: AudioFrame) -> float:
        self.heard.append(audio.seconds)
        if self.mode == "hang":
            await asyncio.Event().wait()
        await asyncio.sleep(0.01)
        if self.mode == "fail":
            raise APIError("scripted turn detector failure", retryable=True)
        return 0.9 if self.judge(audio) else 0.1


def engines() -> dict[str, object]:
    return {
        "vad": EnergyVAD(),
        "wake": ScriptedWake(),
        "stt": ScriptedSTT(),
        "llm": ScriptedLLM(),
        "tts": ScriptedTTS(),
    }
