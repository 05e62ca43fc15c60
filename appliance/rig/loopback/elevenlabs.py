"""A loopback ElevenLabs: the streaming text-to-speech endpoint (JSON in, raw s16le PCM out at the requested
``pcm_<rate>``), with ElevenLabs' ``xi-api-key`` header and ``{"detail": {...}}`` error bodies, and the faults of
``Fault`` applied per request.

The speech is a SYNTHETIC tone (not speech): ``tone_ms`` long, or ``MS_PER_CHAR`` per character of the text.

What each fault does here (as for the loopback OpenAI's speech):

- ``STATUS_500`` / ``STATUS_429`` (with ``Retry-After``) / ``STATUS_401``: that status and ElevenLabs' error JSON.
- ``HANG_BEFORE_FIRST``: status and headers are sent, then nothing.
- ``HANG_AFTER_FIRST``: the first 20 ms of audio, then nothing.
- ``DISCONNECT``: the first 20 ms of audio, then the connection is aborted (no end of the chunked body).
- ``MALFORMED``: a JSON error body (cut short) where the audio should be, as a proxy reporting an error in-band.
- ``TRICKLE``: all the audio, with ``pause()`` between the pieces.

The request is read before the fault is applied, so ``last_request`` and ``received_bytes`` always count it.
"""

from __future__ import annotations

import numpy as np
from aiohttp import web

from appliance.rig.loopback.faults import RETRY_AFTER, Fault
from appliance.rig.loopback.server import LoopbackServer

RATES = (16000, 22050, 24000)
"""The ``pcm_<rate>`` output formats served."""
MS_PER_CHAR = 70
"""Length of the tone per character of text, unless ``tone_ms`` is set (about a normal speaking rate)."""
PIECE_SECONDS = 0.02
"""Audio per piece of the chunked body (20 ms)."""
TONE_HZ = 440.0

_ERRORS: dict[Fault, tuple[int, str, str]] = {
    Fault.STATUS_500: (500, "internal_server_error", "An internal server error occurred. Please try again."),
    Fault.STATUS_429: (429, "too_many_concurrent_requests", "Too many concurrent requests for your subscription."),
    Fault.STATUS_401: (401, "invalid_api_key", "Invalid API key"),
}


def error_response(status: int, code: str, message: str) -> web.Response:
    """ElevenLabs' error shape: ``{"detail": {"status", "message"}}``."""
    headers = {"Retry-After": str(RETRY_AFTER)} if status == 429 else None
    return web.json_response({"detail": {"status": code, "message": message}}, status=status, headers=headers)


def tone(ms: int, rate: int) -> bytes:
    """SYNTHETIC: ``ms`` of a 440 Hz sine at half scale, as s16le PCM."""
    t = np.arange(round(ms * rate / 1000)) / rate
    return np.round(0.5 * 32767 * np.sin(2 * np.pi * TONE_HZ * t)).astype("<i2").tobytes()


class ElevenLabsServer(LoopbackServer):
    """ElevenLabs' streaming speech under ``/v1`` on 127.0.0.1."""

    def __init__(self, *, api_key: str = "test-key", trickle_delay: float = 0.3) -> None:
        super().__init__(trickle_delay=trickle_delay)
        self.api_key = api_key
        self.tone_ms: int | None = None
        """Length of every answer; None: ``MS_PER_CHAR`` per character of the text."""
        self.last_voice = ""
        self.last_query: dict[str, str] = {}

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/text-to-speech/{voice_id}/stream", self._speech)
        app.router.add_get("/v1/voices/{voice_id}", self._voice)

    async def _voice(self, request: web.Request) -> web.Response:
        """A voice's record (what ``doctor`` asks): any voice id is a voice here."""
        fault = self.take_fault()
        if fault in _ERRORS:
            return error_response(*_ERRORS[fault])
        if request.headers.get("xi-api-key") != self.api_key:
            return error_response(401, "invalid_api_key", "Invalid API key")
        voice_id = request.match_info["voice_id"]
        return web.json_response({"voice_id": voice_id, "name": f"Loopback {voice_id}", "category": "premade"})

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        await self.read_json(request)
        self.last_voice = request.match_info["voice_id"]
        self.last_query = dict(request.query)
        fault = self.take_fault()
        if fault in _ERRORS:
            return error_response(*_ERRORS[fault])
        if request.headers.get("xi-api-key") != self.api_key:
            return error_response(401, "invalid_api_key", "Invalid API key")
        text = self.last_request.get("text") if self.last_request is not None else None
        if not isinstance(text, str) or not text.strip():
            return error_response(400, "invalid_text", "'text' must be a non-empty string")
        output = self.last_query.get("output_format", "mp3_44100_128")
        rate = int(output.removeprefix("pcm_")) if output.removeprefix("pcm_").isdigit() else 0
        if rate not in RATES:
            formats = ", ".join(f"pcm_{r}" for r in RATES)
            return error_response(400, "invalid_output_format", f"the loopback server speaks only {formats}")
        pcm = tone(self.tone_ms if self.tone_ms is not None else MS_PER_CHAR * len(text), rate)
        step = round(rate * PIECE_SECONDS) * 2
        return await self._send(request, fault, [pcm[i : i + step] for i in range(0, len(pcm), step)])

    async def _send(self, request: web.Request, fault: Fault, pieces: list[bytes]) -> web.StreamResponse:
        """Stream ``pieces`` (a chunked body), as ``fault`` says."""
        content_type = "application/json" if fault is Fault.MALFORMED else "audio/pcm"
        headers = {"Content-Type": content_type, "request-id": f"loopback-{self.requests}"}
        malformed = b'{"detail": {"status": "upstream_err'
        return await self.send_pieces(request, fault, pieces, headers=headers, malformed=malformed, audio=True)
