"""Deepgram's live transcription over a websocket: 16 kHz linear16 audio goes up as it is captured, interim and
final ``Results`` come back while the user speaks.

The wire protocol is Deepgram's own: the options are query parameters of the handshake, the key goes in
``Authorization: Token <key>``, audio is sent as binary messages, ``{"type": "KeepAlive"}`` keeps an idle stream
open (Deepgram closes one that has had no audio for 10 s) and ``{"type": "CloseStream"}`` asks for the last
results, after which Deepgram sends ``Metadata`` and closes.

The audio of a stream is recorded in the ``EgressLedger`` once, as the stream ends, with the bytes handed to the
socket (audio that was sent on a stream that then failed counts: it may have left the device).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.resample import Resampler, resample
from appliance.errors import APIConnectionError, APIError, APITimeoutError
from appliance.providers.http import (
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    CloudEngine,
    malformed,
    map_error,
    parse_retry_after,
    status_error,
)
from appliance.providers.privacy import EgressLedger
from appliance.stt.base import (
    STT,
    SpeechData,
    SpeechEvent,
    SpeechEventType,
    SpeechStream,
    STTCapabilities,
    STTMetrics,
    joined,
)
from appliance.utils.aio import Channel, cancel_and_wait

logger = logging.getLogger(__name__)

KEEPALIVE_INTERVAL = 4.0
"""Seconds without audio after which a ``KeepAlive`` is sent."""
CHUNK_SECONDS = 0.1
"""``recognize()`` sends its audio in messages of this length."""
CLOSE_TIMEOUT = 1.0
"""Seconds the closing handshake may take before the connection is dropped."""
MAX_MESSAGE = 1 << 20
"""Largest message taken from the server (a result is a few kB)."""
_KEEPALIVE = json.dumps({"type": "KeepAlive"})
_CLOSE_STREAM = json.dumps({"type": "CloseStream"})

InterimCallback = Callable[[SpeechEvent], None]


class _Private(logging.Filter):
    """websockets logs the handshake's headers and every frame at DEBUG: the key is masked, and the frames (the
    user's audio and words) are left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg in ("> %s", "< %s"):
            return False
        args = record.args
        if record.msg == "> %s: %s" and isinstance(args, tuple) and str(args[0]).lower() == "authorization":
            record.args = (args[0], "[hidden]")
        return True


_WS_LOGGER = logging.getLogger("websockets.client.deepgram")
_WS_LOGGER.addFilter(_Private())


class DeepgramSTT(CloudEngine, STT):
    """Streaming recognition; ``recognize()`` streams a whole utterance through one connection."""

    capabilities = STTCapabilities(streaming=True, interim_results=True)
    keepalive_interval = KEEPALIVE_INTERVAL

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str = "nova-3",
        language: str = "en",
        base_url: str = "wss://api.deepgram.com/v1/listen",
        endpointing_ms: int = 300,
        ledger: EgressLedger | None = None,
        label: str = "deepgram",
    ) -> None:
        if not base_url.startswith(("ws://", "wss://")):
            raise ValueError(f"DeepgramSTT: base_url must be a ws:// or wss:// address (got {base_url!r})")
        super().__init__(base_url, api_key, model, ledger, label)
        self.language = language
        self.endpointing_ms = endpointing_ms

    @classmethod
    def auth_headers(cls, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Token {api_key}"}

    @property
    def url(self) -> str:
        """The handshake's address: ``base_url`` with the options of the stream (no key)."""
        params = {"model": self.model, "language": self.language} if self.language else {"model": self.model}
        params |= {
            "encoding": "linear16",
            "sample_rate": str(SAMPLE_RATE),
            "channels": "1",
            "interim_results": "true",
            "endpointing": str(self.endpointing_ms),
            "punctuate": "true",
            "smart_format": "true",
        }
        return f"{self.base_url}?{urllib.parse.urlencode(params)}"

    def stream(self) -> DeepgramStream:
        return DeepgramStream(self, self._next_id())

    async def check(self) -> str:
        """The websocket handshake, then a clean close: reachable and the key taken (raises otherwise). No audio."""
        stream = DeepgramStream(self, self._next_id())
        try:
            ws = await stream._connect()
            await ws.close()
        except (OSError, WebSocketException) as exc:
            raise map_error(exc, self.label) from exc
        return "stream opened"

    async def recognize(
        self, audio: AudioFrame, *, start_time: float = 0.0, on_interim: InterimCallback | None = None
    ) -> SpeechEvent:
        """The transcript of the whole of ``audio`` (its final segments joined); ``on_interim`` is given each
        interim result as it comes. Cancelling the call closes the connection."""
        started = time.perf_counter()
        stream = DeepgramStream(self, self._next_id(), start_time=start_time)
        segments: list[SpeechData] = []
        try:
            for frame in resample(audio, SAMPLE_RATE).split(round(SAMPLE_RATE * CHUNK_SECONDS)):
                stream.push_frame(frame)
            stream.end_input()
            async for event in stream:
                if event.type is SpeechEventType.INTERIM_TRANSCRIPT and on_interim is not None:
                    on_interim(event)
                elif event.type is SpeechEventType.FINAL_TRANSCRIPT:
                    segments.extend(event.alternatives[:1])
        finally:
            await stream.aclose()
        end = start_time + audio.seconds
        data = joined(segments, language=self.language, start=start_time, end=end)
        metrics = STTMetrics(audio.seconds, time.perf_counter() - started, audio_ctx=0)
        return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, end, (data,), metrics)


class DeepgramStream(SpeechStream):
    """One connection: it opens at once in a background task; frames pushed before it is open wait in a queue.
    Interim and final transcripts with text are handed on (an empty one says nothing); a final carries no
    metrics (``recognize()`` gives them for a whole utterance)."""

    def __init__(self, stt: DeepgramSTT, request_id: str, *, start_time: float = 0.0) -> None:
        self._stt = stt
        self.request_id = request_id
        self._start_time = start_time
        self._input: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._events: Channel[SpeechEvent] = Channel()
        self._resampler: Resampler | None = None
        self._ended = False
        self._closed = False
        self._close_sent = False
        self._deadline: asyncio.Timeout | None = None
        self.sent_bytes = 0
        """Audio bytes handed to the socket."""
        self._task = asyncio.create_task(self._run(), name=f"{request_id}-stream")

    def push_frame(self, frame: AudioFrame) -> None:
        """Queue audio of any rate and channel count (sent as 16 kHz mono)."""
        if self._ended or self._closed:
            raise RuntimeError("DeepgramStream: input already ended or stream closed")
        mono = frame if frame.num_channels == 1 else resample(frame, frame.sample_rate)
        if mono.sample_rate != SAMPLE_RATE:
            if self._resampler is None or self._resampler.in_rate != mono.sample_rate:
                self._resampler = Resampler(mono.sample_rate, SAMPLE_RATE)
            mono = self._resampler.push(mono)
        if mono.data.size:
            self._input.put_nowait(mono.data.astype("<i2").tobytes())

    def end_input(self) -> None:
        if self._ended or self._closed:
            raise RuntimeError("DeepgramStream: input already ended or stream closed")
        self._ended = True
        self._input.put_nowait(None)

    async def __anext__(self) -> SpeechEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop: the connection is closed, so the server sees the client go."""
        self._closed = True
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        provider = self._stt.label
        try:
            ws = await self._connect()
            try:
                await self._converse(ws)
            finally:
                await ws.close()
        except ConnectionClosed as exc:
            self._events.fail(self._closed_error(exc))
        except (OSError, WebSocketException) as exc:
            self._events.fail(map_error(exc, provider))
        except Exception as exc:  # an APIError, or a bug: the reader gets it instead of a silent end
            self._events.fail(exc)
        finally:
            if self.sent_bytes:
                self._stt._record("audio", self.sent_bytes)
            self._events.close()

    async def _connect(self) -> ClientConnection:
        provider = self._stt.label
        try:
            return await connect(
                self._stt.url,
                additional_headers=self._stt._headers,
                open_timeout=CONNECT_TIMEOUT,
                close_timeout=CLOSE_TIMEOUT,
                max_size=MAX_MESSAGE,
                logger=_WS_LOGGER,
            )
        except InvalidStatus as exc:
            response = exc.response
            wait = parse_retry_after(response.headers.get("Retry-After"))
            raise status_error(response.status_code, bytes(response.body or b""), wait, provider) from exc
        except TimeoutError as exc:
            raise APITimeoutError(f"{provider}: timed out opening the stream") from exc

    async def _converse(self, ws: ClientConnection) -> None:
        """Send and receive at once until the server has answered the end of the audio and closed."""
        sender = asyncio.create_task(self._send(ws), name=f"{self.request_id}-send")
        receiver = asyncio.create_task(self._receive(ws), name=f"{self.request_id}-receive")
        try:
            await asyncio.wait((sender, receiver), return_when=asyncio.FIRST_EXCEPTION)
            if sender.done() and (error := sender.exception()) is not None:
                raise error
            await receiver
        finally:
            await cancel_and_wait(sender, receiver)

    async def _send(self, ws: ClientConnection) -> None:
        """The queued audio, a ``KeepAlive`` when there has been none for a while, and ``CloseStream`` at the end."""
        get: asyncio.Task[bytes | None] | None = None
        try:
            while True:
                get = get or asyncio.create_task(self._input.get())
                done, _ = await asyncio.wait((get,), timeout=self._stt.keepalive_interval)
                if not done:
                    await ws.send(_KEEPALIVE)
                    continue
                audio, get = get.result(), None
                if audio is None:
                    await ws.send(_CLOSE_STREAM)
                    self._close_sent = True
                    self._allow(READ_TIMEOUT)
                    return
                self.sent_bytes += len(audio)
                await ws.send(audio)
        except ConnectionClosed:
            return  # the receiver reports how the connection ended
        finally:
            if get is not None:
                get.cancel()

    async def _receive(self, ws: ClientConnection) -> None:
        provider = self._stt.label
        try:
            async with asyncio.timeout(None) as self._deadline:
                if self._close_sent:  # the sender was first
                    self._allow(READ_TIMEOUT)
                async for message in ws:
                    if self._close_sent:
                        self._allow(READ_TIMEOUT)
                    self._on_message(message)
        except TimeoutError as exc:
            raise APITimeoutError(f"{provider}: no answer {READ_TIMEOUT:.0f} s after the end of the audio") from exc
        if not self._close_sent:
            raise APIConnectionError(f"{provider}: the stream was closed before the end of the audio")

    def _allow(self, seconds: float) -> None:
        """The server must send something (or close) within ``seconds``."""
        if self._deadline is not None:
            self._deadline.reschedule(asyncio.get_running_loop().time() + seconds)

    def _on_message(self, message: str | bytes) -> None:
        provider = self._stt.label
        if isinstance(message, bytes):
            raise malformed(provider, "a binary message")
        try:
            doc = json.loads(message)
        except ValueError as exc:
            raise malformed(provider, f"a message is not JSON: {message[:40]!r}") from exc
        if not isinstance(doc, dict):
            raise malformed(provider, "a message is not a JSON object")
        kind = doc.get("type")
        if kind == "Results":
            self._on_results(doc)
        elif kind == "Error":
            what = doc.get("description") or doc.get("message") or doc.get("err_msg")
            raise APIConnectionError(f"{provider}: the stream reported an error: {what}")
        elif kind != "Metadata":
            logger.debug("message ignored", extra={"provider": provider, "type": str(kind)})

    def _on_results(self, doc: dict[str, Any]) -> None:
        provider = self._stt.label
        channel = doc.get("channel")
        alternatives = channel.get("alternatives") if isinstance(channel, dict) else None
        if not isinstance(alternatives, list) or not alternatives or not isinstance(alternatives[0], dict):
            raise malformed(provider, "a result without alternatives")
        text, confidence = alternatives[0].get("transcript"), alternatives[0].get("confidence", 0.0)
        start, duration = doc.get("start", 0.0), doc.get("duration", 0.0)
        if not isinstance(text, str) or not all(isinstance(n, int | float) for n in (confidence, start, duration)):
            raise malformed(provider, "a result without a transcript, confidence, start or duration")
        if not text.strip():
            return
        begin = self._start_time + start
        data = SpeechData(text.strip(), self._stt.language, float(confidence), begin, begin + duration)
        final = doc.get("is_final") is True
        kind = SpeechEventType.FINAL_TRANSCRIPT if final else SpeechEventType.INTERIM_TRANSCRIPT
        self._events.send(SpeechEvent(kind, begin + duration, (data,)))

    def _closed_error(self, exc: ConnectionClosed) -> APIError:
        provider = self._stt.label
        if exc.rcvd is None:
            return APIConnectionError(f"{provider}: the connection was lost mid-stream")
        reason = f"{exc.rcvd.code} {exc.rcvd.reason}".strip()
        if exc.rcvd.code == 1008:  # Deepgram's DATA-0000: it cannot decode the audio; sending it again will not help
            return APIError(f"{provider}: the stream was refused ({reason})", retryable=False)
        return APIConnectionError(f"{provider}: the server closed the stream ({reason})")
