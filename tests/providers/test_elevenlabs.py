"""The ElevenLabs client against the loopback ElevenLabs server (its real HTTP streaming endpoint over
127.0.0.1): the healthy path, and every fault the server can be told to apply.

All audio here is SYNTHETIC (the server's tone).
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import numpy as np
import pytest
from aiohttp import web

from appliance.audio.frame import AudioFrame
from appliance.errors import APIConnectionError, APIStatusError
from appliance.providers.elevenlabs import ElevenLabsTTS
from appliance.providers.privacy import EgressLedger
from appliance.rig.loopback.elevenlabs import MS_PER_CHAR, ElevenLabsServer
from appliance.rig.loopback.faults import Fault
from appliance.tts.base import SynthesizedAudio
from tests.providers.loopback import STATUS_FAULTS, serve_with

KEY = "test-key"
VOICE = "21m00Tcm4TlvDq8ikWAM"
TRICKLE = 0.005
"""The server's pause between pieces under ``Fault.TRICKLE`` (small: the whole file must stay fast)."""
NOTHING = 0.5
"""Seconds to wait before taking it that nothing will arrive."""


def serve(test: Callable[[ElevenLabsServer], Awaitable[None]], server: ElevenLabsServer | None = None) -> None:
    serve_with(server or ElevenLabsServer(trickle_delay=TRICKLE), test)


def tts_for(server: ElevenLabsServer, **kwargs: Any) -> ElevenLabsTTS:
    return ElevenLabsTTS(**{"base_url": server.url, "api_key": KEY, "voice_id": VOICE, **kwargs})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def speech_of(tts: ElevenLabsTTS, text: str) -> list[SynthesizedAudio]:
    stream = tts.synthesize(text)
    try:
        return [audio async for audio in stream]
    finally:
        await stream.aclose()


@pytest.mark.parametrize("rate", [16000, 22050, 24000])
def test_speech_arrives_at_the_rate_asked_for_in_frames_of_at_most_50_ms(rate: int) -> None:
    async def test(server: ElevenLabsServer) -> None:
        ledger = EgressLedger()
        tts = tts_for(server, ledger=ledger, sample_rate=rate, model="eleven_turbo_v2_5")
        sentences = ["Hello there.", "How are you?"]
        pieces = await speech_of(tts, " ".join(sentences))
        await tts.aclose()
        assert tts.sample_rate == rate and all(p.frame.sample_rate == rate for p in pieces)
        assert all(0 < p.frame.seconds <= 0.05 for p in pieces)
        assert [p.text for p in pieces if p.text] == sentences
        samples = sum(p.frame.data.size for p in pieces)
        assert samples * 2 == server.sent_audio_bytes
        assert samples / rate == pytest.approx(MS_PER_CHAR / 1000 * sum(len(s) for s in sentences), abs=1e-3)
        audio = np.concatenate([p.frame.data for p in pieces])
        assert AudioFrame(audio, rate).rms_dbfs() > -12  # the server's half-scale tone, not silence
        assert server.last_request == {"text": sentences[1], "model_id": "eleven_turbo_v2_5"}
        assert server.last_voice == VOICE and server.last_query == {"output_format": f"pcm_{rate}"}
        assert ledger.totals() == {("elevenlabs", "text"): (2, server.received_bytes)}

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


def test_the_first_audio_arrives_before_the_sentence_is_all_sent() -> None:
    async def test(server: ElevenLabsServer) -> None:
        server.fail_next(Fault.TRICKLE)
        tts = tts_for(server)
        stream = tts.synthesize("Hi there.")
        first = await stream.__anext__()
        sent_then = server.sent_audio_bytes
        rest = [audio async for audio in stream]
        await stream.aclose()
        await tts.aclose()
        total = server.sent_audio_bytes
        assert first.text == "Hi there." and first.frame.data.size * 2 <= sent_then < total
        assert (first.frame.data.size + sum(a.frame.data.size for a in rest)) * 2 == total
        assert stream.metrics is not None and 0 < stream.metrics.ttfb < stream.metrics.duration

    serve(test)


@pytest.mark.parametrize(("fault", "status", "retryable", "retry_after"), STATUS_FAULTS)
def test_an_error_status_is_an_api_status_error(fault: Fault, status: int, retryable: bool, retry_after: Any) -> None:
    async def test(server: ElevenLabsServer) -> None:
        server.fail_next(fault)
        tts = tts_for(server)
        with pytest.raises(APIStatusError) as err:
            await speech_of(tts, "Hello.")
        await tts.aclose()
        assert (err.value.status, err.value.retryable, err.value.retry_after) == (status, retryable, retry_after)
        if status == 401:
            assert "Invalid API key" in str(err.value) and "check the API key" in str(err.value)

    serve(test)


def test_a_wrong_or_missing_key_is_refused_for_good() -> None:
    async def test(server: ElevenLabsServer) -> None:
        for key in ("wrong-key", None):
            tts = tts_for(server, api_key=key)
            with pytest.raises(APIStatusError) as err:
                await speech_of(tts, "Hello.")
            await tts.aclose()
            assert err.value.status == 401 and not err.value.retryable

    serve(test)


def test_speech_from_a_server_hung_before_the_first_audio() -> None:
    async def test(server: ElevenLabsServer) -> None:
        server.fail_next(Fault.HANG_BEFORE_FIRST)
        tts = tts_for(server)
        stream = tts.synthesize("Hello.")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), NOTHING)
        await stream.aclose()
        await asyncio.wait_for(server.disconnected.wait(), 2.0)
        await tts.aclose()
        assert server.disconnects == 1
        assert stream.metrics is not None and stream.metrics.cancelled and stream.metrics.ttfb == -1.0

    serve(test)


def test_speech_from_a_server_hung_after_the_first_audio() -> None:
    async def test(server: ElevenLabsServer) -> None:
        server.fail_next(Fault.HANG_AFTER_FIRST)
        tts = tts_for(server)
        stream = tts.synthesize("Hello.")
        first = await asyncio.wait_for(stream.__anext__(), 2.0)
        assert first.frame.seconds == pytest.approx(0.02)  # the server's first 20 ms
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), NOTHING)
        await stream.aclose()
        await asyncio.wait_for(server.disconnected.wait(), 2.0)
        await tts.aclose()

    serve(test)


def test_speech_cut_off_after_the_first_audio_is_a_connection_error() -> None:
    async def test(server: ElevenLabsServer) -> None:
        server.fail_next(Fault.DISCONNECT)
        tts = tts_for(server)
        stream = tts.synthesize("Hello.")
        first = await stream.__anext__()
        with pytest.raises(APIConnectionError) as err:
            await stream.__anext__()
        await stream.aclose()
        await tts.aclose()
        assert first.frame.seconds > 0 and err.value.retryable

    serve(test)


def test_speech_that_is_json_instead_of_audio_is_a_connection_error() -> None:
    async def test(server: ElevenLabsServer) -> None:
        server.fail_next(Fault.MALFORMED)
        tts = tts_for(server, label="eleven-eu")
        with pytest.raises(APIConnectionError) as err:
            await speech_of(tts, "Hello.")
        await tts.aclose()
        assert err.value.retryable and str(err.value).startswith("eleven-eu: malformed")
        assert "not audio" in str(err.value)

    serve(test)


class _Mute(ElevenLabsServer):
    """Answers speech with an empty audio body."""

    async def _speech(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        return web.Response(body=b"", content_type="audio/pcm")


def test_speech_that_ends_before_any_audio_is_a_connection_error() -> None:
    async def test(server: ElevenLabsServer) -> None:
        tts = tts_for(server)
        with pytest.raises(APIConnectionError) as err:
            await speech_of(tts, "Hello.")
        await tts.aclose()
        assert err.value.retryable and "before any audio" in str(err.value)

    serve(test, _Mute(trickle_delay=TRICKLE))


def test_speech_from_a_trickling_server_is_whole() -> None:
    async def test(server: ElevenLabsServer) -> None:
        server.fail_next(Fault.TRICKLE)
        tts = tts_for(server)
        started = time.perf_counter()
        pieces = await speech_of(tts, "Hello.")
        elapsed = time.perf_counter() - started
        await tts.aclose()
        chunks = math.ceil(MS_PER_CHAR * len("Hello.") / 20)
        assert sum(p.frame.data.size for p in pieces) * 2 == server.sent_audio_bytes
        assert elapsed >= (chunks - 1) * TRICKLE

    serve(test)


@pytest.mark.parametrize("how", ["refused", "closed_port"])
def test_speech_against_a_refused_connection_fails_at_once(how: str) -> None:
    async def test(server: ElevenLabsServer) -> None:
        if how == "refused":
            await server.set_fault(Fault.REFUSED)
            tts = tts_for(server)
        else:
            tts = ElevenLabsTTS(base_url=f"http://127.0.0.1:{closed_port()}", api_key=KEY, voice_id=VOICE)
        started = time.perf_counter()
        with pytest.raises(APIConnectionError) as err:
            await speech_of(tts, "Hello.")
        assert time.perf_counter() - started < 0.2
        assert err.value.retryable and "cannot connect" in str(err.value)
        await tts.aclose()

    serve(test)


def test_the_key_goes_in_its_own_header_and_never_in_a_repr_or_a_log(caplog: pytest.LogCaptureFixture) -> None:
    secret = "xi-do-not-leak-0123456789"

    async def test(server: ElevenLabsServer) -> None:
        tts = tts_for(server, api_key=secret)
        with caplog.at_level(logging.DEBUG), pytest.raises(APIStatusError) as err:
            await speech_of(tts, "Hello.")  # refused (401): the server wants another key
        await tts.aclose()
        assert secret not in repr(tts) and secret not in str(tts) and secret not in str(err.value)
        assert all(secret not in record.getMessage() for record in caplog.records)
        assert any(record.name.startswith("httpx") for record in caplog.records)  # the request was logged
        assert tts._headers == {"xi-api-key": secret}  # no keyless token

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
