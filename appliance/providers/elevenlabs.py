"""ElevenLabs speech: each sentence is POSTed to the streaming text-to-speech endpoint and its raw PCM handed on
as it arrives.

The key goes in ElevenLabs' own ``xi-api-key`` header. Every request carries the user's text and is recorded in
the ``EgressLedger`` with the size of its body, just before it is sent.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import AsyncIterator

from appliance.audio.frame import AudioFrame
from appliance.providers.http import TRANSPORT_ERRORS, HTTPEngine, check_status, malformed, map_error, pcm_frames
from appliance.providers.privacy import EgressLedger
from appliance.tts.base import TTS, TTSCapabilities
from appliance.tts.stream import SentenceSynthesizeStream

SAMPLE_RATES = (16000, 22050, 24000)
"""The ``pcm_<rate>`` output formats offered (signed 16-bit little-endian mono)."""
_JSON = {"Content-Type": "application/json"}


class ElevenLabsTTS(HTTPEngine, TTS):
    """Speech, sentence by sentence; each sentence's PCM is handed on as it arrives, in frames of at most 50 ms."""

    def __init__(
        self,
        *,
        api_key: str | None,
        voice_id: str,
        model: str = "eleven_flash_v2_5",
        base_url: str = "https://api.elevenlabs.io",
        sample_rate: int = 16000,
        ledger: EgressLedger | None = None,
        label: str = "elevenlabs",
    ) -> None:
        if sample_rate not in SAMPLE_RATES:
            allowed = ", ".join(str(rate) for rate in SAMPLE_RATES)
            raise ValueError(f"ElevenLabsTTS: sample_rate must be one of {allowed} (got {sample_rate})")
        if not voice_id:
            raise ValueError("ElevenLabsTTS: give the voice_id of a voice (see the ElevenLabs voice library)")
        super().__init__(base_url, api_key, model, ledger, label)
        self.voice_id = voice_id
        self.capabilities = TTSCapabilities(streaming=False, sample_rate=sample_rate)

    @classmethod
    def auth_headers(cls, api_key: str) -> dict[str, str]:
        return {"xi-api-key": api_key}

    async def check(self) -> str:
        """``GET v1/voices/{voice_id}``: reachable, the key taken, and the voice there (raises otherwise)."""
        try:
            client = await self._conn.client()
            response = await client.get(f"v1/voices/{urllib.parse.quote(self.voice_id, safe='')}")
            await check_status(response, self.label)
        except TRANSPORT_ERRORS as exc:
            raise map_error(exc, self.label) from exc
        try:
            name = response.json().get("name", "?")
        except (ValueError, AttributeError) as exc:
            raise malformed(self.label, "the voice is not JSON") from exc
        return f"voice {name!r}"

    def stream(self) -> SentenceSynthesizeStream:
        return SentenceSynthesizeStream(None, self._next_id(), speak_chunks=self._speak)

    async def _speak(self, text: str) -> AsyncIterator[AudioFrame]:
        rate = self.sample_rate
        body = json.dumps({"text": text, "model_id": self.model}).encode()
        path = f"v1/text-to-speech/{urllib.parse.quote(self.voice_id, safe='')}/stream"
        params = {"output_format": f"pcm_{rate}"}
        try:
            client = await self._conn.client()
            self._record("text", len(body))
            async with client.stream("POST", path, params=params, content=body, headers=dict(_JSON)) as response:
                await check_status(response, self.label)
                async with contextlib.aclosing(pcm_frames(response, rate, self.label)) as frames:
                    async for frame in frames:
                        yield frame
        except TRANSPORT_ERRORS as exc:
            raise map_error(exc, self.label) from exc
