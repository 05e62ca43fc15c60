"""A loopback OpenAI: chat completions (JSON and SSE), transcriptions (multipart in, verbose_json out) and speech
(24 kHz s16le PCM, streamed), with OpenAI's error bodies, and the faults of ``Fault`` applied per request.

What each fault does here:

- ``STATUS_500`` / ``STATUS_429`` (with ``Retry-After``) / ``STATUS_401``: that status and OpenAI's error JSON.
- ``HANG_BEFORE_FIRST``: status and headers are sent, then nothing.
- ``HANG_AFTER_FIRST``: the first piece (an SSE event, a part of the JSON body, 20 ms of audio), then nothing.
- ``DISCONNECT``: the first piece, then the connection is aborted (a reset, no end of the chunked body).
- ``MALFORMED``: what broken servers and proxies really send with a 200: an SSE event whose data is not JSON
  (``data: {not json``); for the JSON endpoints a body cut short; for speech a JSON body where audio should be
  (a compatible server reporting an error in-band), itself cut short.
- ``TRICKLE``: everything, with ``pause()`` between pieces.

The request is read before the fault is applied, so ``last_request`` and ``received_bytes`` always count it.
"""

from __future__ import annotations

import io
import json
import math
import re
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import soundfile as sf
from aiohttp import web

from appliance.rig.loopback.faults import RETRY_AFTER, Fault
from appliance.rig.loopback.server import LoopbackServer

SPEECH_RATE = 24000
"""OpenAI's ``pcm`` format: 24 kHz signed 16-bit little-endian mono."""
SPEECH_CHUNK = SPEECH_RATE // 50 * 2
"""Bytes per piece of streamed speech (20 ms)."""
SECONDS_PER_CHAR = 0.07
"""Length of the synthetic speech per character of input (about a normal speaking rate)."""
JSON_PIECES = 3
"""A JSON body is sent in this many pieces, so the faults after the first piece apply to it too."""

_ERRORS: dict[Fault, tuple[int, str, str, str | None]] = {
    Fault.STATUS_500: (
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    Fault.STATUS_429: (
        429,
        "Rate limit reached for requests. Please try again in 2s.",
        "requests",
        "rate_limit_exceeded",
    ),
    Fault.STATUS_401: (401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
}


def error_response(status: int, message: str, type_: str, code: str | None = None) -> web.Response:
    """OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    headers = {"Retry-After": str(RETRY_AFTER)} if status == 429 else None
    return web.json_response(body, status=status, headers=headers)


def speech_like(seconds: float, rate: int = SPEECH_RATE) -> np.ndarray:
    """SYNTHETIC voiced sound: a gliding 120-160 Hz fundamental with falling harmonics under a 4 Hz syllable
    envelope (int16, deterministic). Not speech, but it has speech's level, spectrum slope and rhythm."""
    t = np.arange(round(seconds * rate)) / rate
    f0 = 140.0 + 20.0 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(h * phase) / h for h in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 4.0 * t), 0.0, None) ** 0.5
    samples = 0.25 * voice * envelope
    return np.asarray(np.round(samples * 32767), dtype=np.int16)


class OpenAIServer(LoopbackServer):
    """OpenAI's HTTP API under ``/v1`` on 127.0.0.1; ``api_key=None`` accepts requests without a key (as a
    llama.cpp server on the LAN does)."""

    def __init__(self, *, api_key: str | None = "test-key", trickle_delay: float = 0.3) -> None:
        super().__init__(trickle_delay=trickle_delay)
        self.api_key = api_key
        self.model = "loopback-1"
        self.reply = "The capital of France is Paris."
        """What a chat completion answers."""
        self.transcript = "What is the capital of France?"
        """What a transcription hears."""
        self.tool_call: tuple[str, str] | None = None
        """(name, arguments as JSON): when set, a request that offers tools gets this call instead of text,
        unless the conversation ends with a call's answer (then it answers in words, as a model does)."""
        self.usage = True
        """A streamed completion ends with a usage chunk when the request asks (some compatible servers send none)."""
        self.segments = True
        """Transcriptions carry segments with ``avg_logprob`` (some compatible servers send none)."""

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/audio/transcriptions", self._transcriptions)
        app.router.add_post("/v1/audio/speech", self._speech)
        app.router.add_get("/v1/models", self._models)

    # -- endpoints ---------------------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        fault, refused = self._admit(request)
        if refused is not None:
            return refused
        messages = body.get("messages") if body is not None else None
        if body is None or not isinstance(messages, list) or not messages:
            return error_response(400, "'messages' must be a non-empty array", "invalid_request_error")
        answered = isinstance(messages[-1], dict) and messages[-1].get("role") == "tool"
        call = self.tool_call if body.get("tools") and not answered else None  # with the answer in, it speaks
        usage = {"prompt_tokens": sum(len(str(m.get("content", "")).split()) for m in messages)}
        if not body.get("stream"):
            return await self._send_json(request, fault, self._completion(call, usage))
        events = self._completion_events(call, usage, bool(body.get("stream_options")))
        return await self._send(request, fault, events, "text/event-stream", b"data: {not json\n\n")

    async def _transcriptions(self, request: web.Request) -> web.StreamResponse:
        form = await self._read_form(request)
        fault, refused = self._admit(request)
        if refused is not None:
            return refused
        audio = form.get("file") if form is not None else None
        if not isinstance(audio, bytes):
            return error_response(400, "Missing required parameter: 'file'.", "invalid_request_error")
        try:
            info = sf.info(io.BytesIO(audio))
        except (sf.LibsndfileError, RuntimeError) as exc:
            return error_response(400, f"Invalid file format: {exc}", "invalid_request_error")
        if info.format != "WAV":
            return error_response(400, f"Invalid file format {info.format}; send WAV", "invalid_request_error")
        duration = info.frames / info.samplerate
        doc: dict[str, Any] = {"task": "transcribe", "language": "english", "duration": duration}
        doc["text"] = self.transcript
        if self.segments:
            doc["segments"] = _segments(self.transcript, duration)
        return await self._send_json(request, fault, doc)

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        fault, refused = self._admit(request)
        if refused is not None:
            return refused
        text = body.get("input") if body is not None else None
        if not isinstance(text, str) or not text.strip():
            return error_response(400, "'input' must be a non-empty string", "invalid_request_error")
        if body is None or body.get("response_format") != "pcm":
            return error_response(400, "the loopback server speaks only response_format 'pcm'", "invalid_request_error")
        pcm = speech_like(SECONDS_PER_CHAR * len(text)).astype("<i2").tobytes()
        pieces = [pcm[i : i + SPEECH_CHUNK] for i in range(0, len(pcm), SPEECH_CHUNK)]
        garbage = (b'{"error": {"message": "upstr', "application/json")
        return await self._send(request, fault, pieces, "audio/pcm", *garbage)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        self.last_request = {}
        fault, refused = self._admit(request)
        if refused is not None:
            return refused
        model = {"id": self.model, "object": "model", "created": 0, "owned_by": "loopback"}
        return await self._send_json(request, fault, {"object": "list", "data": [model]})

    # -- requests ----------------------------------------------------------------------------------------------

    async def _read_form(self, request: web.Request) -> dict[str, Any] | None:
        """The multipart fields (a file as its bytes; None if the body is not multipart), as ``last_request``."""
        if request.content_type != "multipart/form-data":
            self.received_bytes += len(await request.read())
            self.last_request = None
            return None
        fields: dict[str, Any] = {}
        for name, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                with value.file:  # aiohttp closes it only when the handler ends normally, not when it is cancelled
                    fields[name] = value.file.read()
            else:
                fields[name] = value
        self.received_bytes += request.content.total_bytes
        self.last_request = fields
        return fields

    def _admit(self, request: web.Request) -> tuple[Fault, web.StreamResponse | None]:
        """This request's fault, and the error response when the fault (or a wrong key) refuses it."""
        fault = self.take_fault()
        if fault in _ERRORS:
            return fault, error_response(*_ERRORS[fault])
        if self.api_key is not None and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return fault, error_response(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return fault, None

    # -- responses ---------------------------------------------------------------------------------------------

    def _completion(self, call: tuple[str, str] | None, usage: dict[str, int]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None if call else self.reply}
        if call:
            message["tool_calls"] = [
                {"id": "call_loopback_0", "type": "function", "function": {"name": call[0], "arguments": call[1]}}
            ]
        return {
            "id": "chatcmpl-loopback",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls" if call else "stop"}],
            "usage": {
                **usage,
                "completion_tokens": len(_tokens(self.reply)),
                "total_tokens": usage["prompt_tokens"] + len(_tokens(self.reply)),
            },
        }

    def _completion_events(self, call: tuple[str, str] | None, usage: dict[str, int], with_usage: bool) -> list[bytes]:
        """The SSE events of a streamed completion: the role goes with the first token (so the first piece
        carries text), then a chunk with ``finish_reason``, the usage chunk, and ``[DONE]``."""
        deltas: list[dict[str, Any]]
        if call:
            name, args = call
            function = {"name": name, "arguments": ""}
            opening = {"index": 0, "id": "call_loopback_0", "type": "function", "function": function}
            deltas = [{"role": "assistant", "content": None, "tool_calls": [opening]}]
            pieces = [args[i : i + 8] for i in range(0, len(args), 8)] or [""]
            deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": piece}}]} for piece in pieces]
        else:
            deltas = [{"content": token} for token in _tokens(self.reply)]
            deltas[0] = {"role": "assistant", **deltas[0]}
        chunks = [self._chunk([{"index": 0, "delta": d, "finish_reason": None}]) for d in deltas]
        finish = "tool_calls" if call else "stop"
        chunks.append(self._chunk([{"index": 0, "delta": {}, "finish_reason": finish}]))
        if with_usage and self.usage:
            completion = len(deltas)
            chunks.append(
                self._chunk(
                    [], {**usage, "completion_tokens": completion, "total_tokens": usage["prompt_tokens"] + completion}
                )
            )
        events = [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks]
        return [*events, b"data: [DONE]\n\n"]

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> dict[str, Any]:
        return {
            "id": "chatcmpl-loopback",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
            "usage": usage,
        }

    async def _send_json(self, request: web.Request, fault: Fault, doc: dict[str, Any]) -> web.StreamResponse:
        body = json.dumps(doc).encode()
        step = math.ceil(len(body) / JSON_PIECES)
        pieces = [body[i : i + step] for i in range(0, len(body), step)]
        return await self._send(request, fault, pieces, "application/json", body[: len(body) // 2])

    async def _send(
        self,
        request: web.Request,
        fault: Fault,
        pieces: Sequence[bytes],
        content_type: str,
        malformed: bytes,
        malformed_type: str | None = None,
    ) -> web.StreamResponse:
        """Stream ``pieces`` (a chunked body), as ``fault`` says; ``malformed`` (of ``malformed_type``, by default
        ``content_type``) is the body under ``Fault.MALFORMED``."""
        if fault is Fault.MALFORMED:
            content_type = malformed_type or content_type
        headers = {"Content-Type": content_type, "Cache-Control": "no-cache"}
        audio = content_type.startswith("audio/")
        return await self.send_pieces(request, fault, pieces, headers=headers, malformed=malformed, audio=audio)


def _tokens(text: str) -> list[str]:
    """Word-ish tokens as OpenAI streams them: each with its leading space."""
    return re.findall(r"\s*\S+", text) or [text]


def _segments(text: str, duration: float) -> list[dict[str, Any]]:
    """verbose_json segments: the transcript in two halves, with different ``avg_logprob``."""
    words = text.split()
    halves = [w for w in (" ".join(words[: len(words) // 2]), " ".join(words[len(words) // 2 :])) if w]
    out = []
    for i, part in enumerate(halves):
        out.append(
            {
                "id": i,
                "seek": 0,
                "start": duration * i / len(halves),
                "end": duration * (i + 1) / len(halves),
                "text": " " + part,
                "tokens": [],
                "temperature": 0.0,
                "avg_logprob": -0.1 - 0.2 * i,
                "compression_ratio": 1.0,
                "no_speech_prob": 0.01,
            }
        )
    return out
