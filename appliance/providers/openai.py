"""OpenAI-compatible cloud engines: chat completions streamed over SSE, transcriptions, and speech streamed as
raw PCM. Any server that speaks this API works: OpenAI itself, or a llama.cpp / vLLM server on the LAN (which
needs no key).

Every request that carries the user's text or audio is recorded in the ``EgressLedger`` with the size of its
body, just before it is sent (a request that then fails still counts: it may have left the device).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from httpx_sse import EventSource, aconnect_sse

from appliance.audio.frame import AudioFrame
from appliance.audio.resample import resample
from appliance.audio.wav import wav_bytes
from appliance.errors import APIConnectionError, APIStatusError
from appliance.llm.base import (
    LLM,
    ChatChunk,
    ChatContext,
    FunctionCall,
    LLMCapabilities,
    LLMMetrics,
    LLMStream,
    ToolChoice,
    ToolSpec,
)
from appliance.providers.http import TRANSPORT_ERRORS, HTTPEngine, check_status, malformed, map_error, pcm_frames
from appliance.providers.privacy import EgressLedger
from appliance.stt.base import STT, SpeechData, SpeechEvent, SpeechEventType, STTCapabilities, STTMetrics
from appliance.tts.base import TTS, TTSCapabilities
from appliance.tts.stream import SentenceSynthesizeStream
from appliance.utils.aio import Channel, cancel_and_wait

logger = logging.getLogger(__name__)

PCM_RATE = 24000
"""OpenAI's ``pcm`` speech: 24 kHz signed 16-bit little-endian mono."""
_JSON = {"Content-Type": "application/json"}


# -- LLM -----------------------------------------------------------------------------------------------------------


class OpenAIEngine(HTTPEngine):
    """What the three OpenAI engines share: the server's list of models as the health check."""

    async def check(self) -> str:
        """``GET models``: the server is reachable and takes the key (raises the ``APIError`` otherwise)."""
        try:
            client = await self._conn.client()
            response = await client.get("models")
            await check_status(response, self.label)
        except TRANSPORT_ERRORS as exc:
            raise map_error(exc, self.label) from exc
        try:
            names = [m.get("id") for m in response.json().get("data", [])]
        except (ValueError, AttributeError) as exc:
            raise malformed(self.label, "the model list is not JSON") from exc
        listed = "listed" if self.model in names else "not in its list of models"
        return f"{len(names)} models, {self.model} {listed}"


class OpenAILLM(OpenAIEngine, LLM):
    """Chat completions, streamed; tools offered in OpenAI's function-calling format."""

    capabilities = LLMCapabilities(streaming=True, tool_calling=True)

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str,
        max_tokens: int = 200,
        temperature: float = 0.7,
        ledger: EgressLedger | None = None,
        label: str = "openai",
    ) -> None:
        super().__init__(base_url, api_key, model, ledger, label)
        self.max_tokens = max_tokens
        self.temperature = temperature

    async def warm_up(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> None:
        """Open the connection before the first turn needs it (TCP and TLS set up, the key checked) with ``GET
        models``, which sends nothing of the conversation. A failure is logged, not raised: the device starts, and
        the first real request meets the same error where the fallback logic handles it."""
        try:
            client = await self._conn.client()
            response = await client.get("models")
            await check_status(response, self.label)
        except (*TRANSPORT_ERRORS, APIStatusError) as exc:
            error = map_error(exc, self.label)
            logger.warning("provider warm-up failed", extra={"provider": self.label, "error": str(error)})

    def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto"
    ) -> OpenAIStream:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": chat_ctx.to_openai(),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if tools:
            body["tools"] = [tool.to_openai() for tool in tools]
            body["tool_choice"] = tool_choice
        return OpenAIStream(self, json.dumps(body).encode(), self._next_id())


@dataclass
class _PendingCall:
    """A tool call whose pieces are still arriving."""

    call_id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class OpenAIStream(LLMStream):
    """One streamed completion: the request starts at once in a background task that feeds the chunks in, so
    ``metrics.ttft`` counts from ``chat()`` (to the first text, or to the tool calls of a reply that has none)."""

    def __init__(self, llm: OpenAILLM, body: bytes, request_id: str) -> None:
        self._llm = llm
        self.request_id = request_id
        self.metrics: LLMMetrics | None = None
        self._chunks: Channel[ChatChunk] = Channel()
        self._text: list[str] = []
        self._calls: dict[int, _PendingCall] = {}
        self._started = time.perf_counter()
        self._first_at: float | None = None
        self._last_at: float | None = None
        self._emitted = 0
        self._usage: tuple[int, int] | None = None
        self._cached = 0
        self._finished = False
        self._cancelled = False
        self._task = asyncio.create_task(self._run(body), name=f"{request_id}-request")

    @property
    def text(self) -> str:
        return "".join(self._text)

    async def __anext__(self) -> ChatChunk:
        chunk = await self._chunks.__anext__()
        self._text.append(chunk.delta)
        return chunk

    async def aclose(self) -> None:
        """Stop the request: the connection is closed, so the server sees the client go."""
        if not self._task.done():
            self._cancelled = True
        await cancel_and_wait(self._task)

    async def _run(self, body: bytes) -> None:
        provider = self._llm.label
        try:
            client = await self._llm._conn.client()
            self._llm._record("text", len(body))
            async with aconnect_sse(client, "POST", "chat/completions", content=body, headers=dict(_JSON)) as source:
                await check_status(source.response, provider)
                done = await self._read(source)
            if not (done or self._finished):
                raise APIConnectionError(f"{provider}: the reply ended early (no finish_reason, no [DONE])")
            self._emit_calls()
        except TRANSPORT_ERRORS as exc:
            self._chunks.fail(map_error(exc, provider))
        except Exception as exc:  # an APIError, or a bug: the reader gets it instead of a silent end
            self._chunks.fail(exc)
        finally:
            self._finish_metrics()
            self._chunks.close()

    async def _read(self, source: EventSource) -> bool:
        """Hand on what the events carry; True if ``[DONE]`` came. The body is read to its end after ``[DONE]``
        (it ends there), which lets the connection be used again."""
        done = False
        async with contextlib.aclosing(source.aiter_sse()) as events:
            async for event in events:
                if done:
                    logger.warning("event after [DONE] ignored", extra={"provider": self._llm.label})
                    break
                if event.data.strip() == "[DONE]":
                    done = True
                    self._emit_calls()
                else:
                    self._on_event(event.data)
        return done

    def _on_event(self, data: str) -> None:
        provider = self._llm.label
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise malformed(provider, f"an event is not JSON: {data[:40]!r}") from exc
        if not isinstance(doc, dict):
            raise malformed(provider, "an event is not a JSON object")
        if isinstance(doc.get("error"), dict):
            raise APIConnectionError(f"{provider}: the reply stream reported an error: {doc['error'].get('message')}")
        choices, usage = doc.get("choices"), doc.get("usage")
        if not isinstance(choices, list):
            raise malformed(provider, "an event without 'choices'")
        if isinstance(usage, dict):
            prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
            if not isinstance(prompt, int) or not isinstance(completion, int):
                raise malformed(provider, "'usage' without token counts")
            details = usage.get("prompt_tokens_details")
            cached = details.get("cached_tokens") if isinstance(details, dict) else None
            self._usage = (prompt, completion)
            self._cached = cached if isinstance(cached, int) else 0
        for choice in choices[:1]:  # one reply was asked for (n = 1)
            delta = choice.get("delta", {}) if isinstance(choice, dict) else None
            if not isinstance(delta, dict):
                raise malformed(provider, "a choice without a 'delta' object")
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._emit(ChatChunk(content, self.request_id))
            self._on_tool_deltas(delta.get("tool_calls") or [])
            if choice.get("finish_reason"):
                self._finished = True
                self._emit_calls()

    def _on_tool_deltas(self, deltas: Any) -> None:
        if not isinstance(deltas, list):
            raise malformed(self._llm.label, "'tool_calls' is not a list")
        for delta in deltas:
            if not isinstance(delta, dict) or not isinstance(delta.get("index", 0), int):
                raise malformed(self._llm.label, "a tool call delta without an index")
            function = delta.get("function") or {}
            if not isinstance(function, dict):
                raise malformed(self._llm.label, "a tool call delta whose 'function' is not an object")
            call = self._calls.setdefault(delta.get("index", 0), _PendingCall())
            call.call_id = delta.get("id") or call.call_id
            call.name = function.get("name") or call.name
            arguments = function.get("arguments")
            if arguments:  # text, as OpenAI sends it; some compatible servers send the object itself
                call.arguments.append(arguments if isinstance(arguments, str) else json.dumps(arguments))

    def _emit_calls(self) -> None:
        """Hand on the tool calls completed so far (at a ``finish_reason``, or at the end)."""
        if not self._calls:
            return
        calls = []
        for index, call in sorted(self._calls.items()):
            if not call.call_id or not call.name:
                raise malformed(self._llm.label, f"tool call {index} has no id or no name")
            calls.append(FunctionCall(call.call_id, call.name, "".join(call.arguments) or "{}"))
        self._calls.clear()
        self._emit(ChatChunk("", self.request_id, tool_calls=tuple(calls)))

    def _emit(self, chunk: ChatChunk) -> None:
        self._last_at = time.perf_counter()
        if self._first_at is None:
            self._first_at = self._last_at
        self._emitted += 1
        self._chunks.send(chunk)

    def _finish_metrics(self) -> None:
        ttft = self._first_at - self._started if self._first_at is not None else -1.0
        duration = (self._last_at or time.perf_counter()) - self._started
        prompt, completion = self._usage or (0, self._emitted)
        self.metrics = LLMMetrics(
            self.request_id, ttft, duration, prompt, completion, self._cancelled, cached_tokens=self._cached
        )


# -- STT -----------------------------------------------------------------------------------------------------------


class OpenAISTT(OpenAIEngine, STT):
    """Transcriptions: the utterance is sent as a 16-bit mono WAV; the answer is ``verbose_json``. An empty
    ``language`` lets the provider detect it (the transcript then carries the name the provider gives)."""

    capabilities = STTCapabilities(streaming=False)

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str = "whisper-1",
        language: str = "en",
        ledger: EgressLedger | None = None,
        label: str = "openai",
    ) -> None:
        super().__init__(base_url, api_key, model, ledger, label)
        self.language = language

    async def recognize(self, audio: AudioFrame, *, start_time: float = 0.0) -> SpeechEvent:
        """The transcript; bounded by httpx's timeouts (connect, and each read), cancellable."""
        started = time.perf_counter()
        mono = audio if audio.num_channels == 1 else resample(audio, audio.sample_rate)
        form = {"model": self.model, "response_format": "verbose_json"}
        if self.language:
            form["language"] = self.language
        files = {"file": ("audio.wav", wav_bytes(mono), "audio/wav")}
        try:
            client = await self._conn.client()
            request = client.build_request("POST", "audio/transcriptions", data=form, files=files)
            self._record("audio", len(request.read()))
            response = await client.send(request)
            await check_status(response, self.label)
        except TRANSPORT_ERRORS as exc:
            raise map_error(exc, self.label) from exc
        text, language, confidence = self._parse(response.content)
        end = start_time + audio.seconds
        data = SpeechData(text, self.language or language, confidence, start_time, end)
        metrics = STTMetrics(audio.seconds, time.perf_counter() - started, audio_ctx=0)
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, end, (data,), metrics)

    def _parse(self, body: bytes) -> tuple[str, str, float]:
        """Text, the language the provider names, and the confidence: exp of the mean segment ``avg_logprob``, or
        1.0 when the provider gave no segments (it then says nothing of its confidence)."""
        try:
            doc = json.loads(body)
        except ValueError as exc:
            raise malformed(self.label, f"the transcription is not JSON: {body[:40]!r}") from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
            raise malformed(self.label, "the transcription has no 'text'")
        segments = doc.get("segments") or []
        if not isinstance(segments, list):
            raise malformed(self.label, "'segments' is not a list")
        logprobs: list[float] = []
        for segment in segments:
            logprob = segment.get("avg_logprob") if isinstance(segment, dict) else None
            if not isinstance(logprob, int | float):
                raise malformed(self.label, "a segment without a numeric 'avg_logprob'")
            logprobs.append(float(logprob))
        confidence = math.exp(sum(logprobs) / len(logprobs)) if logprobs else 1.0
        return doc["text"].strip(), str(doc.get("language") or ""), min(1.0, confidence)


# -- TTS -----------------------------------------------------------------------------------------------------------


class OpenAITTS(OpenAIEngine, TTS):
    """Speech, sentence by sentence; each sentence's PCM is handed on as it arrives, in frames of at most 50 ms."""

    capabilities = TTSCapabilities(streaming=False, sample_rate=PCM_RATE)

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | None,
        model: str = "tts-1",
        voice: str = "alloy",
        ledger: EgressLedger | None = None,
        label: str = "openai",
    ) -> None:
        super().__init__(base_url, api_key, model, ledger, label)
        self.voice = voice

    def stream(self) -> SentenceSynthesizeStream:
        return SentenceSynthesizeStream(None, self._next_id(), speak_chunks=self._speak)

    async def _speak(self, text: str) -> AsyncIterator[AudioFrame]:
        request = {"model": self.model, "voice": self.voice, "input": text, "response_format": "pcm"}
        body = json.dumps(request).encode()
        try:
            client = await self._conn.client()
            self._record("text", len(body))
            async with client.stream("POST", "audio/speech", content=body, headers=dict(_JSON)) as response:
                await check_status(response, self.label)
                async with contextlib.aclosing(pcm_frames(response, PCM_RATE, self.label)) as frames:
                    async for frame in frames:
                        yield frame
        except TRANSPORT_ERRORS as exc:
            raise map_error(exc, self.label) from exc
