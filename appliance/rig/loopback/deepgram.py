"""A loopback Deepgram: the live-transcription websocket on ``/v1/listen`` (query parameters, ``Authorization:
Token <key>``, binary linear16 audio in, ``Results`` and ``Metadata`` JSON out), with the faults of ``Fault``
applied per connection.

It does not recognise anything: the transcript is scripted. The n-th stretch of speech the audio holds (a level
above ``SPEECH_DBFS``) is given the n-th of ``utterances``; while it lasts, an interim ``Results`` with one more of
its words follows every ``INTERIM_SECONDS`` of audio (``interim_results=true``). The final ``Results``
(``is_final`` and ``speech_final``) comes when ``endpointing`` ms of silence follow the speech, at a
``Finalize``, or at ``CloseStream``; after ``CloseStream`` come ``Metadata`` and the close (1000).

What each fault does here:

- ``STATUS_500`` / ``STATUS_429`` (with ``Retry-After``) / ``STATUS_401``: the handshake is refused with that
  status and Deepgram's error JSON.
- ``HANG_BEFORE_FIRST``: the upgrade is accepted and the audio read, but nothing is ever sent.
- ``HANG_AFTER_FIRST``: the first message (an interim), then nothing (the audio is still read).
- ``DISCONNECT``: the first message, then the connection is aborted (no close frame).
- ``MALFORMED``: the first message is not JSON; nothing follows it.
- ``TRICKLE``: every message, with ``pause()`` before each after the first.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import json
import uuid
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from appliance.audio.frame import window_levels
from appliance.rig.loopback.faults import RETRY_AFTER, Fault
from appliance.rig.loopback.server import LoopbackServer
from appliance.utils.aio import cancel_and_wait

SPEECH_DBFS = -40.0
"""Level above which a 20 ms window counts as speech."""
WINDOW_SECONDS = 0.02
INTERIM_SECONDS = 0.5
"""Audio between two interim results of one stretch of speech."""
DEFAULT_ENDPOINTING_MS = 10
"""Deepgram's endpointing when the query does not set it."""
_HOLDING = (Fault.HANG_BEFORE_FIRST, Fault.HANG_AFTER_FIRST, Fault.MALFORMED)
"""Faults under which the server stops sending (and never closes) but reads on."""

_ERRORS: dict[Fault, tuple[int, str, str]] = {
    Fault.STATUS_500: (500, "INTERNAL_SERVER_ERROR", "The server encountered an unexpected error."),
    Fault.STATUS_429: (429, "TOO_MANY_REQUESTS", "Too many requests. Please try again later"),
    Fault.STATUS_401: (401, "INVALID_AUTH", "Invalid credentials."),
}


def error_response(status: int, code: str, message: str) -> web.Response:
    """Deepgram's error shape: ``{"err_code", "err_msg", "request_id"}``, and the ``dg-error`` header."""
    body = {"err_code": code, "err_msg": message, "request_id": str(uuid.uuid4())}
    headers = {"dg-error": message}
    if status == 429:
        headers["Retry-After"] = str(RETRY_AFTER)
    return web.json_response(body, status=status, headers=headers)


class DeepgramServer(LoopbackServer):
    """Deepgram's live transcription under ``/v1/listen`` on 127.0.0.1 (``url`` is its ``ws://`` address)."""

    def __init__(self, *, api_key: str = "test-key", trickle_delay: float = 0.3) -> None:
        super().__init__(trickle_delay=trickle_delay)
        self.api_key = api_key
        self.utterances = ["Go forward ten meters."]
        """What the stretches of speech say, in order (a stretch past the end is heard as nothing)."""
        self.confidence = 0.97
        """The confidence of a final result (an interim's is lower)."""
        self.last_query: dict[str, str] = {}
        """The query parameters of the last handshake."""
        self.received_audio_bytes = 0
        """Audio bytes received, over all connections."""
        self.controls: list[str] = []
        """The ``type`` of every text message received (``KeepAlive``, ``CloseStream``, ``Finalize``)."""
        self.sent: list[dict[str, Any]] = []
        """Every JSON message sent, over all connections."""

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/listen"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/listen", self._listen)

    async def _listen(self, request: web.Request) -> web.StreamResponse:
        self.last_query = dict(request.query)
        fault = self.take_fault()
        if fault in _ERRORS:
            return error_response(*_ERRORS[fault])
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            return error_response(401, "INVALID_AUTH", "Invalid credentials.")
        problem = _check_query(self.last_query)
        if problem:
            return error_response(400, "Bad Request", problem)
        ws = web.WebSocketResponse()
        if not ws.can_prepare(request).ok:
            return error_response(426, "UPGRADE_REQUIRED", "Connect with a websocket.")
        await ws.prepare(request)
        session = _Session(self, self.last_query)
        writer = asyncio.create_task(self._write(request, ws, session, fault), name="loopback-deepgram-write")
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY:
                    self.received_audio_bytes += len(msg.data)
                    session.feed(msg.data)
                elif msg.type is WSMsgType.TEXT:
                    session.control(msg.data)
                else:
                    break
        finally:
            if not session.closed_by_server:
                self.disconnects += 1
                self.disconnected.set()
            await cancel_and_wait(writer)
        return ws

    async def _write(self, request: web.Request, ws: web.WebSocketResponse, session: _Session, fault: Fault) -> None:
        """Send what the session queues, as ``fault`` says; close after ``CloseStream`` has been answered."""
        sent = 0
        while (message := await session.out.get()) is not None:
            if fault is Fault.HANG_BEFORE_FIRST or (sent and fault in _HOLDING):
                continue
            if sent and fault is Fault.TRICKLE:
                await self.pause()
            if fault is Fault.MALFORMED:
                await ws.send_str("{not json")
            else:
                await ws.send_str(json.dumps(message))
                self.sent.append(message)
            sent += 1
            if fault is Fault.DISCONNECT:
                session.closed_by_server = True
                assert request.transport is not None
                request.transport.abort()
                return
        if fault not in _HOLDING:
            session.closed_by_server = True
            await ws.close()


def _check_query(query: dict[str, str]) -> str:
    """What is wrong with the query for raw linear16 mono audio ('' if nothing)."""
    if query.get("encoding") != "linear16":
        return "the loopback server takes only encoding=linear16"
    if not query.get("sample_rate", "").isdigit() or int(query["sample_rate"]) < 8000:
        return "sample_rate must be given with encoding=linear16"
    if query.get("channels", "1") != "1":
        return "the loopback server takes only channels=1"
    endpointing = query.get("endpointing", str(DEFAULT_ENDPOINTING_MS))
    if endpointing != "false" and not endpointing.isdigit():
        return "endpointing must be a number of milliseconds or false"
    return ""


class _Session:
    """One connection's audio and the results it earns."""

    def __init__(self, server: DeepgramServer, query: dict[str, str]) -> None:
        self.server = server
        self.rate = int(query["sample_rate"])
        self.model = query.get("model", "nova-3")
        self.interim = query.get("interim_results") == "true"
        endpointing = query.get("endpointing", str(DEFAULT_ENDPOINTING_MS))
        self.endpointing = None if endpointing == "false" else int(endpointing) * self.rate // 1000
        self.window = round(self.rate * WINDOW_SECONDS)
        self.request_id = str(uuid.uuid4())
        self.out: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.closed_by_server = False
        self._pending = bytearray()
        self._digest = hashlib.sha256()
        self._received = 0
        """Samples taken into account (whole windows)."""
        self._start = 0
        """Sample at which the current segment starts."""
        self._heard = False
        self._silent = 0
        self._interims = 0
        self._spoken = 0
        """Stretches of speech finalised so far."""

    def feed(self, data: bytes) -> None:
        self._digest.update(data)
        self._pending += data
        usable = len(self._pending) // (2 * self.window) * 2 * self.window
        samples = np.frombuffer(bytes(self._pending[:usable]), dtype="<i2").astype(np.int16)
        del self._pending[:usable]
        for level in window_levels(samples, self.window):
            self._received += self.window
            if level > SPEECH_DBFS:
                self._heard, self._silent = True, 0
            else:
                self._silent += self.window
            if self._heard and self.endpointing is not None and self._silent >= self.endpointing:
                self._final()
            elif self._heard and self.interim and self._received - self._start >= self._next_interim():
                self._interims += 1
                self._result(self._words()[: self._interims], 0.8 * self.server.confidence, False)

    def control(self, text: str) -> None:
        try:
            doc = json.loads(text)
        except ValueError:
            return
        kind = str(doc.get("type")) if isinstance(doc, dict) else ""
        self.server.controls.append(kind)
        if kind == "Finalize":
            self._flush()
        elif kind == "CloseStream":
            self._flush()
            self.out.put_nowait(self._metadata())
            self.out.put_nowait(None)

    def _next_interim(self) -> int:
        return round((self._interims + 1) * INTERIM_SECONDS * self.rate)

    def _words(self) -> list[str]:
        script = self.server.utterances
        return script[self._spoken].split() if self._spoken < len(script) else []

    def _flush(self) -> None:
        """Finalise what was received, the odd samples too."""
        self._received += len(self._pending) // 2
        self._pending.clear()
        if self._received > self._start:
            self._final()

    def _final(self) -> None:
        words = self._words() if self._heard else []
        self._result(words, self.server.confidence if words else 0.0, True)
        self._spoken += bool(self._heard)
        self._start, self._heard, self._silent, self._interims = self._received, False, 0, 0

    def _result(self, words: list[str], confidence: float, final: bool) -> None:
        start = self._start / self.rate
        duration = (self._received - self._start) / self.rate
        step = duration / max(1, len(words))
        timed = [
            {
                "word": word.strip(".,?!").lower(),
                "start": start + i * step,
                "end": start + (i + 1) * step,
                "confidence": confidence,
                "punctuated_word": word,
            }
            for i, word in enumerate(words)
        ]
        alternative = {"transcript": " ".join(words), "confidence": confidence, "words": timed}
        self.out.put_nowait(
            {
                "type": "Results",
                "channel_index": [0, 1],
                "duration": duration,
                "start": start,
                "is_final": final,
                "speech_final": final,
                "from_finalize": False,
                "channel": {"alternatives": [alternative]},
                "metadata": {
                    "request_id": self.request_id,
                    "model_info": {"name": self.model, "version": "loopback", "arch": "loopback"},
                    "model_uuid": "00000000-0000-0000-0000-000000000000",
                },
            }
        )

    def _metadata(self) -> dict[str, Any]:
        return {
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": self._digest.hexdigest(),
            "created": datetime.datetime.now(datetime.UTC).isoformat(),
            "duration": self._received / self.rate,
            "channels": 1,
            "models": ["00000000-0000-0000-0000-000000000000"],
            "model_info": {
                "00000000-0000-0000-0000-000000000000": {"name": self.model, "version": "loopback", "arch": "loopback"}
            },
        }
