"""What only the ElevenLabs client does, against the loopback ElevenLabs server (its real HTTP streaming endpoint
over 127.0.0.1): its rates, its request and its key header. What it shares with the OpenAI voice (the audio, the
faults) is tested in ``test_speech_clients``.

All audio here is SYNTHETIC (the server's tone).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from appliance.providers.elevenlabs import ElevenLabsTTS
from appliance.rig.loopback.elevenlabs import ElevenLabsServer
from tests.providers.loopback import serve_with, speech_of

KEY = "test-key"
VOICE = "21m00Tcm4TlvDq8ikWAM"


def serve(test: Callable[[ElevenLabsServer], Awaitable[None]]) -> None:
    serve_with(ElevenLabsServer(), test)


def tts_for(server: ElevenLabsServer, **kwargs: Any) -> ElevenLabsTTS:
    return ElevenLabsTTS(**{"base_url": server.url, "api_key": KEY, "voice_id": VOICE, **kwargs})


@pytest.mark.parametrize("rate", [16000, 22050, 24000])
def test_each_sentence_goes_to_the_voice_with_its_model_and_the_pcm_format_of_the_rate(rate: int) -> None:
    async def test(server: ElevenLabsServer) -> None:
        tts = tts_for(server, sample_rate=rate, model="eleven_turbo_v2_5")
        sentences = ["Hello there.", "How are you?"]
        pieces = await speech_of(tts, " ".join(sentences))
        await tts.aclose()
        assert [p.text for p in pieces if p.text] == sentences
        assert server.last_request == {"text": sentences[1], "model_id": "eleven_turbo_v2_5"}
        assert server.last_voice == VOICE and server.last_query == {"output_format": f"pcm_{rate}"}

    serve(test)


def test_the_default_is_16khz_with_the_flash_model() -> None:
    tts = ElevenLabsTTS(api_key=KEY, voice_id=VOICE)
    assert (tts.sample_rate, tts.model, tts.base_url, tts.label) == (
        16000,
        "eleven_flash_v2_5",
        "https://api.elevenlabs.io",
        "elevenlabs",
    )
    assert not tts.capabilities.streaming


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_a_rate_elevenlabs_does_not_stream_as_pcm_is_refused_naming_the_ones_it_does(rate: int) -> None:
    with pytest.raises(ValueError, match="16000, 22050, 24000"):
        ElevenLabsTTS(api_key=KEY, voice_id=VOICE, sample_rate=rate)


def test_the_key_goes_in_its_own_header() -> None:
    secret = "xi-do-not-leak-0123456789"

    async def test(server: ElevenLabsServer) -> None:
        server.api_key = secret
        tts = tts_for(server, api_key=secret)
        pieces = await speech_of(tts, "Hello.")  # taken: the server reads it from xi-api-key
        await tts.aclose()
        assert pieces and tts._headers == {"xi-api-key": secret}  # no keyless token

    serve(test)


def test_the_server_wants_its_key_a_text_and_a_pcm_format() -> None:
    async def test(server: ElevenLabsServer) -> None:
        server.tone_ms = 100
        path = f"v1/text-to-speech/{VOICE}/stream"
        async with httpx.AsyncClient(base_url=server.url + "/", headers={"xi-api-key": KEY}) as client:
            ok = await client.post(path, params={"output_format": "pcm_22050"}, json={"text": "Hi.", "model_id": "m"})
            mp3 = await client.post(path, json={"text": "Hi.", "model_id": "m"})
            empty = await client.post(path, params={"output_format": "pcm_16000"}, json={"text": " "})
            keyless = await client.post(
                path, params={"output_format": "pcm_16000"}, json={"text": "Hi."}, headers={"xi-api-key": ""}
            )
        assert ok.headers["content-type"] == "audio/pcm" and len(ok.content) == 2 * 2205
        assert [r.status_code for r in (mp3, empty, keyless)] == [400, 400, 401]
        assert all(set(r.json()["detail"]) == {"status", "message"} for r in (mp3, empty, keyless))

    serve(test)
