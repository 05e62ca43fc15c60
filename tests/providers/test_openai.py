"""The OpenAI-compatible clients against the loopback OpenAI server (the real wire protocol over 127.0.0.1): the
healthy path, and every fault the server can be told to apply.

All audio here is SYNTHETIC (a sine for the utterance, the server's harmonic buzz for speech).
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import numpy as np
import pytest
import soundfile as sf

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.errors import APIConnectionError, APIStatusError
from appliance.llm.base import ChatContext, FunctionCall, Role, ToolSpec
from appliance.providers.openai import OpenAILLM, OpenAISTT, OpenAITTS
from appliance.providers.privacy import EgressLedger
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.openai import SECONDS_PER_CHAR, SPEECH_RATE, OpenAIServer
from appliance.rig.loopback.server import serve_in_thread
from tests.providers.loopback import STATUS_FAULTS, closed_port, serve_with, speech_of

KEY = "test-key"
TRICKLE = 0.005
"""The server's pause between pieces under ``Fault.TRICKLE`` (small: the whole file must stay fast)."""
NOTHING = 0.5
"""Seconds to wait before taking it that nothing will arrive."""
WEATHER = ToolSpec(
    "get_weather",
    "The weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def serve(test: Callable[[OpenAIServer], Awaitable[None]], server: OpenAIServer | None = None) -> None:
    serve_with(server or OpenAIServer(trickle_delay=TRICKLE), test)


def question() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(Role.SYSTEM, "Answer in one sentence.")
    ctx.add_message(Role.USER, "What is the capital of France?")
    return ctx


def llm_for(server: OpenAIServer, **kwargs: Any) -> OpenAILLM:
    return OpenAILLM(**{"base_url": server.url + "/v1", "api_key": KEY, "model": "loopback-1", **kwargs})


def stt_for(server: OpenAIServer, **kwargs: Any) -> OpenAISTT:
    return OpenAISTT(**{"base_url": server.url + "/v1", "api_key": KEY, **kwargs})


def tts_for(server: OpenAIServer, **kwargs: Any) -> OpenAITTS:
    return OpenAITTS(**{"base_url": server.url + "/v1", "api_key": KEY, **kwargs})


def utterance(seconds: float = 1.0) -> AudioFrame:
    """SYNTHETIC: a 220 Hz tone at 16 kHz."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return AudioFrame.from_float32(0.3 * np.sin(2 * np.pi * 220 * t), SAMPLE_RATE)


async def reply_of(llm: OpenAILLM, ctx: ChatContext, **kwargs: Any) -> tuple[list[str], Any]:
    stream = llm.chat(ctx, **kwargs)
    try:
        deltas = [chunk.delta async for chunk in stream]
    finally:
        await stream.aclose()
    return deltas, stream.metrics


# -- LLM -----------------------------------------------------------------------------------------------------------


def test_chat_streams_the_reply_token_by_token_with_usage_metrics() -> None:
    async def test(server: OpenAIServer) -> None:
        llm = llm_for(server, max_tokens=50, temperature=0.2)
        started = time.perf_counter()
        deltas, metrics = await reply_of(llm, question())
        elapsed = time.perf_counter() - started
        await llm.aclose()
        assert "".join(deltas) == server.reply and len(deltas) == len(server.reply.split())
        assert metrics.request_id == "openai_1" and not metrics.cancelled
        assert 0 < metrics.ttft <= metrics.duration <= elapsed
        assert (metrics.prompt_tokens, metrics.completion_tokens) == (10, len(deltas))  # the server's usage chunk
        sent = server.last_request
        assert sent is not None and sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
        assert sent["messages"] == question().to_openai() and "tools" not in sent
        assert (sent["model"], sent["max_tokens"], sent["temperature"]) == ("loopback-1", 50, 0.2)

    serve(test)


def test_without_a_usage_chunk_the_tokens_are_the_chunks_counted() -> None:
    async def test(server: OpenAIServer) -> None:
        server.usage = False
        llm = llm_for(server)
        deltas, metrics = await reply_of(llm, question())
        await llm.aclose()
        assert (metrics.prompt_tokens, metrics.completion_tokens) == (0, len(deltas))

    serve(test)


def test_the_text_so_far_is_what_the_reader_has_taken() -> None:
    async def test(server: OpenAIServer) -> None:
        llm = llm_for(server)
        stream = llm.chat(question())
        first = await stream.__anext__()
        assert stream.text == first.delta == "The"
        await stream.aclose()
        await llm.aclose()

    serve(test)


def test_tools_are_sent_and_the_tool_call_comes_back_as_one_function_call() -> None:
    async def test(server: OpenAIServer) -> None:
        server.tool_call = ("get_weather", '{"city": "Paris"}')
        llm = llm_for(server)
        stream = llm.chat(question(), tools=[WEATHER])
        chunks = [chunk async for chunk in stream]
        await llm.aclose()
        assert server.last_request is not None and server.last_request["tools"] == [WEATHER.to_openai()]
        assert [c.tool_calls for c in chunks] == [
            (FunctionCall("call_loopback_0", "get_weather", '{"city": "Paris"}'),)
        ]
        assert stream.text == "" and stream.metrics is not None and stream.metrics.ttft > 0

    serve(test)


def test_without_tools_offered_the_reply_is_text_even_if_the_server_could_call_one() -> None:
    async def test(server: OpenAIServer) -> None:
        server.tool_call = ("get_weather", '{"city": "Paris"}')
        llm = llm_for(server)
        deltas, _ = await reply_of(llm, question())
        await llm.aclose()
        assert "".join(deltas) == server.reply

    serve(test)


@pytest.mark.parametrize(("fault", "status", "retryable", "retry_after"), STATUS_FAULTS)
def test_an_error_status_is_an_api_status_error(fault: Fault, status: int, retryable: bool, retry_after: Any) -> None:
    async def test(server: OpenAIServer) -> None:
        server.fail_next(fault)
        llm = llm_for(server)
        with pytest.raises(APIStatusError) as err:
            await reply_of(llm, question())
        await llm.aclose()
        assert (err.value.status, err.value.retryable, err.value.retry_after) == (status, retryable, retry_after)
        if status == 401:
            assert "check the API key" in str(err.value)

    serve(test)


def test_a_wrong_or_missing_key_is_refused_for_good() -> None:
    async def test(server: OpenAIServer) -> None:
        for key in ("wrong-key", None):
            llm = llm_for(server, api_key=key)
            with pytest.raises(APIStatusError) as err:
                await reply_of(llm, question())
            await llm.aclose()
            assert err.value.status == 401 and not err.value.retryable and "check the API key" in str(err.value)

    serve(test)


def test_a_server_that_needs_no_key_is_used_without_one() -> None:
    async def test(server: OpenAIServer) -> None:
        llm = llm_for(server, api_key=None)
        deltas, _ = await reply_of(llm, question())
        await llm.aclose()
        assert "".join(deltas) == server.reply

    serve(test, OpenAIServer(api_key=None))


def test_hang_before_first_token_gives_nothing_and_closing_drops_the_connection() -> None:
    async def test(server: OpenAIServer) -> None:
        server.fail_next(Fault.HANG_BEFORE_FIRST)
        llm = llm_for(server)
        stream = llm.chat(question())
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), NOTHING)
        await stream.aclose()
        await asyncio.wait_for(server.disconnected.wait(), 2.0)
        await llm.aclose()
        assert server.disconnects == 1
        assert stream.metrics is not None and stream.metrics.cancelled and stream.metrics.ttft == -1.0

    serve(test)


def test_hang_after_first_token_gives_the_first_and_then_nothing() -> None:
    async def test(server: OpenAIServer) -> None:
        server.fail_next(Fault.HANG_AFTER_FIRST)
        llm = llm_for(server)
        stream = llm.chat(question())
        first = await asyncio.wait_for(stream.__anext__(), 2.0)
        assert first.delta == "The"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), NOTHING)
        await stream.aclose()
        await asyncio.wait_for(server.disconnected.wait(), 2.0)
        await llm.aclose()
        assert stream.metrics is not None and stream.metrics.cancelled and stream.metrics.completion_tokens == 1

    serve(test)


def test_a_dropped_connection_after_the_first_token_is_a_connection_error() -> None:
    async def test(server: OpenAIServer) -> None:
        server.fail_next(Fault.DISCONNECT)
        llm = llm_for(server)
        stream = llm.chat(question())
        first = await stream.__anext__()
        with pytest.raises(APIConnectionError) as err:
            await stream.__anext__()
        await stream.aclose()
        await llm.aclose()
        assert first.delta == "The" and err.value.retryable

    serve(test)


def test_a_malformed_event_is_a_connection_error_naming_the_provider() -> None:
    async def test(server: OpenAIServer) -> None:
        server.fail_next(Fault.MALFORMED)
        llm = llm_for(server, label="lan-llama")
        with pytest.raises(APIConnectionError) as err:
            await reply_of(llm, question())
        await llm.aclose()
        assert err.value.retryable and str(err.value).startswith("lan-llama: malformed")

    serve(test)


class _Truncating(OpenAIServer):
    """Ends the completion stream cleanly before its finish_reason and [DONE] (a proxy cutting it short)."""

    def _completion_events(self, *args: Any) -> list[bytes]:
        return super()._completion_events(*args)[:-3]


def test_a_stream_that_ends_without_finish_reason_or_done_is_a_connection_error() -> None:
    async def test(server: OpenAIServer) -> None:
        llm = llm_for(server)
        stream = llm.chat(question())
        deltas = []
        with pytest.raises(APIConnectionError) as err:
            async for chunk in stream:
                deltas.append(chunk.delta)
        await llm.aclose()
        assert "".join(deltas) == server.reply and err.value.retryable and "ended early" in str(err.value)

    serve(test, _Truncating(trickle_delay=TRICKLE))


def test_a_trickling_server_gives_the_whole_reply_slower() -> None:
    async def test(server: OpenAIServer) -> None:
        server.fail_next(Fault.TRICKLE)
        llm = llm_for(server)
        deltas, metrics = await reply_of(llm, question())
        await llm.aclose()
        assert "".join(deltas) == server.reply
        assert metrics.duration - metrics.ttft >= (len(deltas) - 1) * TRICKLE  # a pause between two tokens

    serve(test)


@pytest.mark.parametrize("how", ["refused", "closed_port"])
def test_a_refused_connection_fails_at_once(how: str) -> None:
    async def test(server: OpenAIServer) -> None:
        if how == "refused":
            await server.set_fault(Fault.REFUSED)
            llm = llm_for(server)
        else:
            llm = OpenAILLM(base_url=f"http://127.0.0.1:{closed_port()}/v1", api_key=KEY, model="m")
        started = time.perf_counter()
        with pytest.raises(APIConnectionError) as err:
            await reply_of(llm, question())
        elapsed = time.perf_counter() - started
        await llm.aclose()
        assert err.value.retryable and "cannot connect" in str(err.value)
        assert elapsed < 0.2

    serve(test)


def test_every_chat_request_is_in_the_ledger_with_its_size() -> None:
    async def test(server: OpenAIServer) -> None:
        ledger = EgressLedger()
        llm = llm_for(server, ledger=ledger)
        await reply_of(llm, question())
        await reply_of(llm, question(), tools=[WEATHER])
        await llm.aclose()
        assert ledger.totals() == {("openai", "text"): (2, server.received_bytes)}

    serve(test)


def test_the_key_is_never_in_a_repr_or_a_log(caplog: pytest.LogCaptureFixture) -> None:
    secret = "sk-do-not-leak-0123456789"

    async def test(server: OpenAIServer) -> None:
        engines = [llm_for(server, api_key=secret), stt_for(server, api_key=secret), tts_for(server, api_key=secret)]
        with caplog.at_level(logging.DEBUG), pytest.raises(APIStatusError) as err:
            await reply_of(engines[0], question())  # refused (401): the server wants another key
        for engine in engines:
            assert secret not in repr(engine) and secret not in str(engine)
            await engine.aclose()
        assert secret not in str(err.value)
        assert all(secret not in record.getMessage() for record in caplog.records)
        assert any(record.name.startswith("httpx") for record in caplog.records)  # the request was logged

    serve(test)


def test_an_engine_serves_one_event_loop_after_another_and_closes_from_sync_code() -> None:
    """The CLI's shape: ``asyncio.run`` per command, then ``close()`` from sync code."""
    server = OpenAIServer(trickle_delay=TRICKLE)
    with serve_in_thread(server):
        llm = llm_for(server)
        for _ in range(2):
            deltas, _ = asyncio.run(reply_of(llm, question()))
            assert "".join(deltas) == server.reply
        llm.close()


def test_the_server_answers_a_completion_that_is_not_streamed() -> None:
    async def test(server: OpenAIServer) -> None:
        server.tool_call = ("get_weather", '{"city": "Paris"}')
        body: dict[str, Any] = {"model": "m", "messages": question().to_openai()}
        async with httpx.AsyncClient(base_url=server.url + "/v1/", headers={"Authorization": f"Bearer {KEY}"}) as c:
            text = (await c.post("chat/completions", json=body)).json()
            call = (await c.post("chat/completions", json={**body, "tools": [WEATHER.to_openai()]})).json()
        assert text["object"] == "chat.completion" and text["choices"][0]["message"]["content"] == server.reply
        assert call["choices"][0]["finish_reason"] == "tool_calls"
        assert call["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"

    serve(test)


# -- STT -----------------------------------------------------------------------------------------------------------


def test_recognize_sends_a_wav_and_returns_the_servers_transcript_and_confidence() -> None:
    async def test(server: OpenAIServer) -> None:
        ledger = EgressLedger()
        stt = stt_for(server, ledger=ledger, language="fr", model="whisper-large")
        audio = utterance(1.25)
        event = await stt.recognize(audio, start_time=10.0)
        await stt.aclose()
        (data,) = event.alternatives
        assert data.text == server.transcript and data.language == "fr"
        assert data.confidence == pytest.approx(math.exp((-0.1 + -0.3) / 2))  # the server's two segments
        assert (data.start_time, data.end_time, event.timestamp) == (10.0, 11.25, 11.25)
        assert event.metrics is not None and event.metrics.audio_duration == 1.25 and event.metrics.audio_ctx == 0
        assert event.metrics.duration > 0
        sent = server.last_request
        assert sent is not None
        assert (sent["model"], sent["language"], sent["response_format"]) == ("whisper-large", "fr", "verbose_json")
        info = sf.info(io.BytesIO(sent["file"]))
        assert (info.format, info.subtype, info.channels, info.samplerate) == ("WAV", "PCM_16", 1, SAMPLE_RATE)
        assert info.frames == audio.samples_per_channel
        samples, _ = sf.read(io.BytesIO(sent["file"]), dtype="int16")
        assert np.array_equal(samples, audio.data)
        assert ledger.totals() == {("openai", "audio"): (1, server.received_bytes)}

    serve(test)


def test_an_empty_language_lets_the_provider_detect_it() -> None:
    async def test(server: OpenAIServer) -> None:
        stt = stt_for(server, language="")
        event = await stt.recognize(utterance())
        await stt.aclose()
        assert server.last_request is not None and "language" not in server.last_request
        assert event.alternatives[0].language == "english"  # what the server names

    serve(test)


def test_without_segments_the_confidence_is_one() -> None:
    async def test(server: OpenAIServer) -> None:
        server.segments = False
        stt = stt_for(server)
        event = await stt.recognize(utterance())
        await stt.aclose()
        assert event.alternatives[0].confidence == 1.0

    serve(test)


@pytest.mark.parametrize(("fault", "status", "retryable", "retry_after"), STATUS_FAULTS)
def test_recognize_error_status(fault: Fault, status: int, retryable: bool, retry_after: Any) -> None:
    async def test(server: OpenAIServer) -> None:
        server.fail_next(fault)
        stt = stt_for(server)
        with pytest.raises(APIStatusError) as err:
            await stt.recognize(utterance())
        await stt.aclose()
        assert (err.value.status, err.value.retryable, err.value.retry_after) == (status, retryable, retry_after)

    serve(test)


@pytest.mark.parametrize("fault", [Fault.HANG_BEFORE_FIRST, Fault.HANG_AFTER_FIRST])
def test_recognize_against_a_hung_server_waits_and_cancelling_drops_the_connection(fault: Fault) -> None:
    async def test(server: OpenAIServer) -> None:
        server.fail_next(fault)
        stt = stt_for(server)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stt.recognize(utterance()), NOTHING)
        await asyncio.wait_for(server.disconnected.wait(), 2.0)
        await stt.aclose()

    serve(test)


@pytest.mark.parametrize("fault", [Fault.DISCONNECT, Fault.MALFORMED])
def test_recognize_with_a_broken_answer_is_a_connection_error(fault: Fault) -> None:
    async def test(server: OpenAIServer) -> None:
        server.fail_next(fault)
        stt = stt_for(server)
        with pytest.raises(APIConnectionError) as err:
            await stt.recognize(utterance())
        await stt.aclose()
        assert err.value.retryable

    serve(test)


def test_recognize_against_a_trickling_server_gets_the_whole_transcript() -> None:
    async def test(server: OpenAIServer) -> None:
        server.fail_next(Fault.TRICKLE)
        stt = stt_for(server)
        event = await stt.recognize(utterance())
        await stt.aclose()
        assert event.alternatives[0].text == server.transcript
        assert event.metrics is not None and event.metrics.duration >= 2 * TRICKLE  # three pieces, two pauses

    serve(test)


def test_recognize_against_a_refused_connection_fails_at_once() -> None:
    async def test(server: OpenAIServer) -> None:
        await server.set_fault(Fault.REFUSED)
        stt = stt_for(server)
        started = time.perf_counter()
        with pytest.raises(APIConnectionError):
            await stt.recognize(utterance())
        assert time.perf_counter() - started < 0.2
        await stt.aclose()

    serve(test)


def test_the_server_wants_a_wav_file() -> None:
    async def test(server: OpenAIServer) -> None:
        headers = {"Authorization": f"Bearer {KEY}"}
        form = {"model": "whisper-1"}
        async with httpx.AsyncClient(base_url=server.url + "/v1/", headers=headers) as client:
            missing = await client.post("audio/transcriptions", data=form, files={"other": ("a", b"x")})
            not_wav = await client.post("audio/transcriptions", data=form, files={"file": ("a.wav", b"RIFFnope")})
            models = await client.get("models")
        for response in (missing, not_wav):
            assert response.status_code == 400
            assert set(response.json()["error"]) >= {"message", "type", "code"}
        assert models.json()["data"][0]["id"] == server.model

    serve(test)


# -- TTS (what it shares with the ElevenLabs voice is tested in test_speech_clients) -------------------------------


def test_each_sentence_is_sent_with_the_model_the_voice_and_the_pcm_format() -> None:
    async def test(server: OpenAIServer) -> None:
        tts = tts_for(server, voice="nova")
        sentences = ["Hello there.", "How are you?"]
        pieces = await speech_of(tts, " ".join(sentences))
        await tts.aclose()
        assert [p.text for p in pieces if p.text] == sentences
        sent = server.last_request
        assert sent == {"model": "tts-1", "voice": "nova", "input": sentences[1], "response_format": "pcm"}

    serve(test)


def test_the_servers_speech_lasts_as_its_text_says() -> None:
    async def test(server: OpenAIServer) -> None:
        async with httpx.AsyncClient(base_url=server.url + "/v1/") as client:
            body = {"model": "tts-1", "voice": "alloy", "input": "Hello.", "response_format": "pcm"}
            response = await client.post("audio/speech", json=body, headers={"Authorization": f"Bearer {KEY}"})
        assert response.headers["content-type"] == "audio/pcm"
        assert len(response.content) / 2 / SPEECH_RATE == pytest.approx(SECONDS_PER_CHAR * 6, abs=1e-4)
        assert server.last_request == body

    serve(test)


def test_warm_up_opens_the_connection_without_sending_the_conversation(caplog: pytest.LogCaptureFixture) -> None:
    async def test(server: OpenAIServer) -> None:
        ledger = EgressLedger()
        llm = llm_for(server, ledger=ledger)
        await llm.warm_up(question())
        assert server.requests == 1 and server.received_bytes == 0 and ledger.totals() == {}
        server.fail_next(Fault.STATUS_401)
        with caplog.at_level(logging.WARNING):
            await llm.warm_up(question())  # the device still starts; the failure is logged
        await llm.aclose()
        (record,) = [r for r in caplog.records if r.getMessage() == "provider warm-up failed"]
        assert "check the API key" in record.error  # type: ignore[attr-defined]

    serve(test)
