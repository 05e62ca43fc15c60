"""The contract both streaming speech clients keep (ElevenLabs and OpenAI: each sentence POSTed, its raw PCM handed on
as it arrives), against each one's loopback server over 127.0.0.1: the healthy path, and every fault the server
can be told to apply. What only one of them does is tested in its own file.

All audio here is SYNTHETIC (the loopback ElevenLabs' tone, the loopback OpenAI's harmonic buzz).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from appliance.audio.frame import AudioFrame
from appliance.errors import APIConnectionError, APIStatusError
from appliance.providers.elevenlabs import SAMPLE_RATES, ElevenLabsTTS
from appliance.providers.openai import OpenAITTS
from appliance.providers.privacy import EgressLedger
from appliance.rig.loopback.elevenlabs import MS_PER_CHAR, ElevenLabsServer
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.openai import SECONDS_PER_CHAR, SPEECH_RATE, OpenAIServer
from appliance.tts.base import TTS
from tests.providers.loopback import STATUS_FAULTS, closed_port, serve_with, speech_of

KEY = "test-key"
VOICE = "21m00Tcm4TlvDq8ikWAM"
TRICKLE = 0.005
"""The server's pause between pieces under ``Fault.TRICKLE`` (small: the whole file must stay fast)."""
NOTHING = 0.5
"""Seconds to wait before taking it that nothing will arrive."""
PIECE_MS = 20
"""Audio per piece the loopback servers stream."""

Server = ElevenLabsServer | OpenAIServer


@dataclass(frozen=True)
class Speaker:
    """What differs between the two clients, as these tests see it."""

    label: str
    """The client's label unless it is given one (its name in the ledger)."""
    server: type[Server]
    client_at: Callable[..., TTS]
    """The client for a server at this URL (``http://127.0.0.1:<port>``), with the test's key unless the options
    give another."""
    rate: int
    """The rate the client speaks at unless it is told another."""
    seconds_per_char: float
    """How long the server's speech lasts per character of the text."""
    level: float
    """The level (dBFS) the server's sound is above: not silence."""
    refusal: str
    """What the server says when it refuses the key."""

    def client(self, server: Server, **options: Any) -> TTS:
        return self.client_at(server.url, **options)


def _elevenlabs_at(url: str, **options: Any) -> TTS:
    return ElevenLabsTTS(**{"base_url": url, "api_key": KEY, "voice_id": VOICE, **options})


def _openai_at(url: str, **options: Any) -> TTS:
    return OpenAITTS(**{"base_url": url + "/v1", "api_key": KEY, **options})


ELEVENLABS = Speaker(
    label="elevenlabs",
    server=ElevenLabsServer,
    client_at=_elevenlabs_at,
    rate=16000,
    seconds_per_char=MS_PER_CHAR / 1000,
    level=-12,  # the server's half-scale tone
    refusal="Invalid API key",
)
OPENAI = Speaker(
    label="openai",
    server=OpenAIServer,
    client_at=_openai_at,
    rate=SPEECH_RATE,
    seconds_per_char=SECONDS_PER_CHAR,
    level=-30,  # speech-like
    refusal="Incorrect API key provided.",
)


@pytest.fixture(params=[pytest.param(ELEVENLABS, id="elevenlabs"), pytest.param(OPENAI, id="openai")])
def speaker(request: pytest.FixtureRequest) -> Speaker:
    return request.param  # type: ignore[no-any-return]


def serve(speaker: Speaker, test: Callable[[Server], Awaitable[None]], server: Server | None = None) -> None:
    serve_with(server or speaker.server(trickle_delay=TRICKLE), test)


async def _answer_nothing(self: Server, request: web.Request) -> web.StreamResponse:
    await request.read()
    return web.Response(body=b"", content_type="audio/pcm")


def mute(speaker: Speaker) -> Server:
    """The speaker's server, answering speech with an empty audio body."""
    cls = type(f"Mute{speaker.server.__name__}", (speaker.server,), {"_speech": _answer_nothing})
    server: Server = cls(trickle_delay=TRICKLE)
    return server


AT_EACH_RATE = [
    *(pytest.param(ELEVENLABS, {"sample_rate": rate}, rate, id=f"elevenlabs-{rate}") for rate in SAMPLE_RATES),
    pytest.param(OPENAI, {}, SPEECH_RATE, id="openai"),
]
"""(speaker, the client's options, the rate they ask for): every rate each client streams at."""


@pytest.mark.parametrize(("speaker", "options", "rate"), AT_EACH_RATE)
def test_speech_arrives_at_its_rate_sentence_by_sentence_in_frames_of_at_most_50_ms(
    speaker: Speaker, options: dict[str, Any], rate: int
) -> None:
    async def test(server: Server) -> None:
        ledger = EgressLedger()
        tts = speaker.client(server, ledger=ledger, **options)
        sentences = ["Hello there.", "How are you?"]
        pieces = await speech_of(tts, " ".join(sentences))
        await tts.aclose()
        assert tts.sample_rate == rate and all(p.frame.sample_rate == rate for p in pieces)
        assert all(0 < p.frame.seconds <= 0.05 for p in pieces)
        assert [p.text for p in pieces if p.text] == sentences
        samples = sum(p.frame.data.size for p in pieces)
        assert samples * 2 == server.sent_audio_bytes
        expected = speaker.seconds_per_char * sum(len(s) for s in sentences)
        assert samples / rate == pytest.approx(expected, abs=1e-3)
        audio = np.concatenate([p.frame.data for p in pieces])
        assert AudioFrame(audio, rate).rms_dbfs() > speaker.level
        assert ledger.totals() == {(speaker.label, "text"): (2, server.received_bytes)}

    serve(speaker, test)


def test_the_first_audio_arrives_before_the_sentence_is_all_sent(speaker: Speaker) -> None:
    async def test(server: Server) -> None:
        server.fail_next(Fault.TRICKLE)
        tts = speaker.client(server)
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

    serve(speaker, test)


@pytest.mark.parametrize(("fault", "status", "retryable", "retry_after"), STATUS_FAULTS)
def test_an_error_status_is_an_api_status_error(
    speaker: Speaker, fault: Fault, status: int, retryable: bool, retry_after: Any
) -> None:
    async def test(server: Server) -> None:
        server.fail_next(fault)
        tts = speaker.client(server)
        with pytest.raises(APIStatusError) as err:
            await speech_of(tts, "Hello.")
        await tts.aclose()
        assert (err.value.status, err.value.retryable, err.value.retry_after) == (status, retryable, retry_after)
        if status == 401:
            assert speaker.refusal in str(err.value) and "check the API key" in str(err.value)

    serve(speaker, test)


def test_a_wrong_or_missing_key_is_refused_for_good(speaker: Speaker) -> None:
    async def test(server: Server) -> None:
        for key in ("wrong-key", None):
            tts = speaker.client(server, api_key=key)
            with pytest.raises(APIStatusError) as err:
                await speech_of(tts, "Hello.")
            await tts.aclose()
            assert err.value.status == 401 and not err.value.retryable

    serve(speaker, test)


def test_speech_from_a_server_hung_before_the_first_audio(speaker: Speaker) -> None:
    async def test(server: Server) -> None:
        server.fail_next(Fault.HANG_BEFORE_FIRST)
        tts = speaker.client(server)
        stream = tts.synthesize("Hello.")
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), NOTHING)
        await stream.aclose()
        await asyncio.wait_for(server.disconnected.wait(), 2.0)
        await tts.aclose()
        assert server.disconnects == 1
        assert stream.metrics is not None and stream.metrics.cancelled and stream.metrics.ttfb == -1.0

    serve(speaker, test)


def test_speech_from_a_server_hung_after_the_first_audio(speaker: Speaker) -> None:
    async def test(server: Server) -> None:
        server.fail_next(Fault.HANG_AFTER_FIRST)
        tts = speaker.client(server)
        stream = tts.synthesize("Hello.")
        first = await asyncio.wait_for(stream.__anext__(), 2.0)
        assert first.frame.seconds == pytest.approx(PIECE_MS / 1000)  # the server's first piece
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), NOTHING)
        await stream.aclose()
        await asyncio.wait_for(server.disconnected.wait(), 2.0)
        await tts.aclose()

    serve(speaker, test)


def test_speech_cut_off_after_the_first_audio_is_a_connection_error(speaker: Speaker) -> None:
    async def test(server: Server) -> None:
        server.fail_next(Fault.DISCONNECT)
        tts = speaker.client(server)
        stream = tts.synthesize("Hello.")
        first = await stream.__anext__()
        with pytest.raises(APIConnectionError) as err:
            await stream.__anext__()
        await stream.aclose()
        await tts.aclose()
        assert first.frame.seconds > 0 and err.value.retryable

    serve(speaker, test)


def test_speech_that_is_json_instead_of_audio_is_a_connection_error_naming_the_provider(speaker: Speaker) -> None:
    async def test(server: Server) -> None:
        server.fail_next(Fault.MALFORMED)
        tts = speaker.client(server, label=f"{speaker.label}-eu")
        with pytest.raises(APIConnectionError) as err:
            await speech_of(tts, "Hello.")
        await tts.aclose()
        assert err.value.retryable and str(err.value).startswith(f"{speaker.label}-eu: malformed")
        assert "not audio" in str(err.value)

    serve(speaker, test)


def test_speech_that_ends_before_any_audio_is_a_connection_error(speaker: Speaker) -> None:
    async def test(server: Server) -> None:
        tts = speaker.client(server)
        with pytest.raises(APIConnectionError) as err:
            await speech_of(tts, "Hello.")
        await tts.aclose()
        assert err.value.retryable and "before any audio" in str(err.value)

    serve(speaker, test, mute(speaker))


def test_speech_from_a_trickling_server_is_whole(speaker: Speaker) -> None:
    async def test(server: Server) -> None:
        server.fail_next(Fault.TRICKLE)
        tts = speaker.client(server)
        started = time.perf_counter()
        pieces = await speech_of(tts, "Hello.")
        elapsed = time.perf_counter() - started
        await tts.aclose()
        chunks = math.ceil(round(speaker.seconds_per_char * 1000 * len("Hello.")) / PIECE_MS)
        assert sum(p.frame.data.size for p in pieces) * 2 == server.sent_audio_bytes
        assert elapsed >= (chunks - 1) * TRICKLE

    serve(speaker, test)


@pytest.mark.parametrize("how", ["refused", "closed_port"])
def test_speech_against_a_refused_connection_fails_at_once(speaker: Speaker, how: str) -> None:
    async def test(server: Server) -> None:
        if how == "refused":
            await server.set_fault(Fault.REFUSED)
            tts = speaker.client(server)
        else:
            tts = speaker.client_at(f"http://127.0.0.1:{closed_port()}")
        started = time.perf_counter()
        with pytest.raises(APIConnectionError) as err:
            await speech_of(tts, "Hello.")
        assert time.perf_counter() - started < 0.2
        assert err.value.retryable and "cannot connect" in str(err.value)
        await tts.aclose()

    serve(speaker, test)


def test_the_key_is_never_in_a_repr_or_a_log(speaker: Speaker, caplog: pytest.LogCaptureFixture) -> None:
    secret = "do-not-leak-0123456789"

    async def test(server: Server) -> None:
        tts = speaker.client(server, api_key=secret)
        with caplog.at_level(logging.DEBUG), pytest.raises(APIStatusError) as err:
            await speech_of(tts, "Hello.")  # refused (401): the server wants another key
        await tts.aclose()
        assert secret not in repr(tts) and secret not in str(tts) and secret not in str(err.value)
        assert all(secret not in record.getMessage() for record in caplog.records)
        assert any(record.name.startswith("httpx") for record in caplog.records)  # the request was logged

    serve(speaker, test)
