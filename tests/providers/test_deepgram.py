"""The Deepgram client against the loopback Deepgram server (its real websocket protocol over 127.0.0.1): the
healthy path, and every fault the server can be told to apply.

The audio is real speech (the pocketsphinx-testdata recordings); the server's transcripts are scripted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from aiohttp import web

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.resample import resample
from appliance.errors import APIConnectionError, APIError, APIStatusError, APITimeoutError
from appliance.providers import deepgram
from appliance.providers.deepgram import DeepgramStream, DeepgramSTT
from appliance.providers.privacy import EgressLedger
from appliance.rig.loopback.deepgram import DeepgramServer
from appliance.rig.loopback.faults import Fault
from appliance.stt.base import SpeechEvent, SpeechEventType
from tests.providers.loopback import STATUS_FAULTS, closed_port, serve_with

KEY = "test-key"
TRICKLE = 0.005
"""The server's pause between messages under ``Fault.TRICKLE`` (small: the whole file must stay fast)."""
NOTHING = 0.5
"""Seconds to wait before taking it that nothing will arrive."""
FRAME = SAMPLE_RATE // 50
"""Samples per pushed frame (20 ms, as a microphone gives them)."""
INTERIM = SpeechEventType.INTERIM_TRANSCRIPT
FINAL = SpeechEventType.FINAL_TRANSCRIPT


def serve(test: Callable[[DeepgramServer], Awaitable[None]], server: DeepgramServer | None = None) -> None:
    serve_with(server or DeepgramServer(trickle_delay=TRICKLE), test)


def stt_for(server: DeepgramServer, **kwargs: Any) -> DeepgramSTT:
    return DeepgramSTT(**{"base_url": server.ws_url, "api_key": KEY, **kwargs})


def push(stream: DeepgramStream, audio: AudioFrame, samples: int = FRAME) -> None:
    for frame in audio.split(samples):
        stream.push_frame(frame)


def texts(events: list[SpeechEvent]) -> list[str]:
    return [e.alternatives[0].text for e in events]


# -- the healthy path ----------------------------------------------------------------------------------------------


def test_recognize_streams_the_utterance_and_returns_its_final_transcript(go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        ledger = EgressLedger()
        stt = stt_for(server, ledger=ledger, model="nova-2", language="en-GB", endpointing_ms=250)
        interims: list[SpeechEvent] = []
        event = await stt.recognize(go_forward, start_time=10.0, on_interim=interims.append)
        (data,) = event.alternatives
        assert event.type is FINAL and data.text == "Go forward ten meters." and data.language == "en-GB"
        assert data.confidence == pytest.approx(server.confidence)
        assert (data.start_time, data.end_time, event.timestamp) == (10.0, 10.0 + go_forward.seconds, data.end_time)
        assert event.metrics is not None and event.metrics.audio_duration == go_forward.seconds
        assert 0 < event.metrics.duration < 1.0 and event.metrics.audio_ctx == 0
        assert len(interims) >= 2 and all(e.type is INTERIM for e in interims)
        assert all("Go forward ten meters.".startswith(text) for text in texts(interims))
        assert all(10.0 <= e.alternatives[0].start_time <= e.timestamp <= data.end_time for e in interims)
        options = "model=nova-2 language=en-GB encoding=linear16 sample_rate=16000 channels=1 interim_results=true"
        options += " endpointing=250 punctuate=true smart_format=true"
        assert server.last_query == dict(option.split("=") for option in options.split())
        assert server.received_audio_bytes == go_forward.data.size * 2
        assert server.controls == ["CloseStream"] and server.disconnects == 0
        assert ledger.totals() == {("deepgram", "audio"): (1, server.received_audio_bytes)}

    serve(test)


def test_recognize_joins_the_final_segments_of_an_utterance(go_forward: AudioFrame, go_somewhere: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        server.utterances = ["Go forward ten meters.", "Go somewhere and do something."]
        stt = stt_for(server)
        pause = np.zeros(SAMPLE_RATE // 2, np.int16)
        audio = AudioFrame(np.concatenate([go_forward.data, pause, go_somewhere.data]), SAMPLE_RATE)
        event = await stt.recognize(audio)
        finals = [m for m in server.sent if m.get("is_final") and m["channel"]["alternatives"][0]["transcript"]]
        assert len(finals) == 2  # the pause ended the first segment
        assert event.alternatives[0].text == "Go forward ten meters. Go somewhere and do something."

    serve(test)


def test_silence_gives_an_empty_transcript() -> None:
    """As the fallback adapter's probe sends it: the provider answers, with no words."""

    async def test(server: DeepgramServer) -> None:
        stt = stt_for(server)
        event = await stt.recognize(AudioFrame(np.zeros(SAMPLE_RATE // 2, np.int16), SAMPLE_RATE))
        assert event.type is FINAL and event.alternatives[0].text == "" and event.alternatives[0].confidence == 0.0

    serve(test)


def test_interim_results_arrive_while_the_audio_is_still_coming(go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        stt = stt_for(server)
        stream = stt.stream()
        half = go_forward.samples_per_channel // 2
        push(stream, AudioFrame(go_forward.data[:half], SAMPLE_RATE))
        first = await asyncio.wait_for(stream.__anext__(), 2.0)  # before the end of the audio was even sent
        assert first.type is INTERIM and first.alternatives[0].text == "Go"
        assert "CloseStream" not in server.controls
        push(stream, AudioFrame(go_forward.data[half:], SAMPLE_RATE))
        stream.end_input()
        rest = [event async for event in stream]
        await stream.aclose()
        types = [first.type] + [e.type for e in rest]
        assert types.count(FINAL) == 1 and types.index(FINAL) > types.index(INTERIM)
        final = next(e for e in rest if e.type is FINAL)
        assert final.alternatives[0].text == "Go forward ten meters." and final.metrics is None
        assert server.controls == ["CloseStream"] and server.disconnects == 0  # the server closed, after Metadata

    serve(test)


def test_frames_of_any_rate_and_channel_count_go_up_as_16khz_mono(go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        stt = stt_for(server)
        high = resample(go_forward, 48000)
        stereo = AudioFrame(np.repeat(high.data, 2), 48000, 2)
        stream = stt.stream()
        push(stream, stereo, 480)  # 10 ms frames
        stream.end_input()
        events = [event async for event in stream]
        await stream.aclose()
        assert server.last_query["sample_rate"] == "16000"
        assert server.received_audio_bytes == pytest.approx(go_forward.data.size * 2, abs=2 * SAMPLE_RATE // 20)
        assert texts(events)[-1] == "Go forward ten meters."

    serve(test)


def test_an_idle_stream_is_kept_alive_and_ends_without_a_ledger_record() -> None:
    async def test(server: DeepgramServer) -> None:
        ledger = EgressLedger()
        stt = stt_for(server, ledger=ledger)
        stt.keepalive_interval = 0.02
        stream = stt.stream()
        for _ in range(200):  # up to 2 s
            await asyncio.sleep(0.01)
            if server.controls.count("KeepAlive") >= 2:
                break
        stream.end_input()
        assert [event async for event in stream] == []
        await stream.aclose()
        assert server.controls.count("KeepAlive") >= 2 and server.controls[-1] == "CloseStream"
        assert ledger.totals() == {}

    serve(test)


def test_closing_a_stream_closes_its_socket_at_the_server(go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        ledger = EgressLedger()
        stt = stt_for(server, ledger=ledger)
        stream = stt.stream()
        push(stream, go_forward)
        assert (await asyncio.wait_for(stream.__anext__(), 2.0)).type is INTERIM
        await stream.aclose()
        await asyncio.wait_for(server.disconnected.wait(), 2.0)
        assert server.disconnects == 1 and "CloseStream" not in server.controls
        assert ledger.totals() == {("deepgram", "audio"): (1, stream.sent_bytes)}
        with pytest.raises(RuntimeError):
            stream.push_frame(go_forward)

    serve(test)


# -- faults --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "status", "retryable", "retry_after"), STATUS_FAULTS)
def test_a_refused_handshake_is_an_api_status_error(
    fault: Fault, status: int, retryable: bool, retry_after: Any, go_forward: AudioFrame
) -> None:
    async def test(server: DeepgramServer) -> None:
        server.fail_next(fault)
        ledger = EgressLedger()
        stt = stt_for(server, ledger=ledger)
        with pytest.raises(APIStatusError) as err:
            await stt.recognize(go_forward)
        assert (err.value.status, err.value.retryable, err.value.retry_after) == (status, retryable, retry_after)
        assert str(err.value).startswith(f"deepgram: HTTP {status}: ")
        if status == 401:
            assert "Invalid credentials." in str(err.value) and "check the API key" in str(err.value)
        assert ledger.totals() == {} and server.received_audio_bytes == 0  # no audio left

    serve(test)


def test_a_wrong_or_missing_key_is_refused_for_good(go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        for key in ("wrong-key", None):
            stt = stt_for(server, api_key=key)
            with pytest.raises(APIStatusError) as err:
                await stt.recognize(go_forward)
            assert err.value.status == 401 and not err.value.retryable

    serve(test)


@pytest.mark.parametrize("how", ["refused", "closed_port"])
def test_a_refused_connection_fails_at_once(how: str, go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        if how == "refused":
            await server.set_fault(Fault.REFUSED)
            stt = stt_for(server)
        else:
            stt = DeepgramSTT(base_url=f"ws://127.0.0.1:{closed_port()}/v1/listen", api_key=KEY)
        started = time.perf_counter()
        with pytest.raises(APIConnectionError) as err:
            await stt.recognize(go_forward)
        assert time.perf_counter() - started < 0.2
        assert err.value.retryable and "cannot connect" in str(err.value)

    serve(test)


def test_hang_before_the_first_result_gives_nothing_and_cancelling_drops_the_connection(go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        server.fail_next(Fault.HANG_BEFORE_FIRST)
        interims: list[SpeechEvent] = []
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stt_for(server).recognize(go_forward, on_interim=interims.append), NOTHING)
        await asyncio.wait_for(server.disconnected.wait(), 2.0)
        assert interims == [] and server.disconnects == 1
        assert server.received_audio_bytes == go_forward.data.size * 2

    serve(test)


def test_hang_after_the_first_result_gives_the_first_and_then_nothing(go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        server.fail_next(Fault.HANG_AFTER_FIRST)
        stream = stt_for(server).stream()
        push(stream, go_forward)
        stream.end_input()
        first = await asyncio.wait_for(stream.__anext__(), 2.0)
        assert first.type is INTERIM and first.alternatives[0].text == "Go"
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(stream.__anext__(), NOTHING)
        await stream.aclose()
        await asyncio.wait_for(server.disconnected.wait(), 2.0)

    serve(test)


def test_no_answer_after_the_end_of_the_audio_is_a_timeout(
    go_forward: AudioFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deepgram, "READ_TIMEOUT", 0.2)

    async def test(server: DeepgramServer) -> None:
        server.fail_next(Fault.HANG_AFTER_FIRST)
        with pytest.raises(APITimeoutError) as err:
            await stt_for(server).recognize(go_forward)
        assert err.value.retryable and "no answer" in str(err.value)

    serve(test)


def test_a_dropped_connection_after_the_first_result_is_a_connection_error(go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        server.fail_next(Fault.DISCONNECT)
        stream = stt_for(server).stream()
        push(stream, go_forward)
        first = await stream.__anext__()
        with pytest.raises(APIConnectionError) as err:
            await stream.__anext__()
        await stream.aclose()
        assert first.type is INTERIM and err.value.retryable and "lost" in str(err.value)

    serve(test)


def test_a_message_that_is_not_json_is_a_connection_error_naming_the_provider(go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        server.fail_next(Fault.MALFORMED)
        stt = stt_for(server, label="deepgram-eu")
        with pytest.raises(APIConnectionError) as err:
            await stt.recognize(go_forward)
        assert err.value.retryable and str(err.value).startswith("deepgram-eu: malformed")

    serve(test)


def test_a_trickling_server_gives_the_whole_transcript_slower(go_forward: AudioFrame) -> None:
    async def test(server: DeepgramServer) -> None:
        server.fail_next(Fault.TRICKLE)
        interims: list[SpeechEvent] = []
        event = await stt_for(server).recognize(go_forward, on_interim=interims.append)
        assert event.alternatives[0].text == "Go forward ten meters."
        assert event.metrics is not None and event.metrics.duration >= (len(server.sent) - 1) * TRICKLE

    serve(test)


class _Closing(DeepgramServer):
    """Closes every stream at once with ``code`` (Deepgram's way of reporting an error mid-stream)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(trickle_delay=TRICKLE)
        self.code, self.reason = code, reason

    async def _listen(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.close(code=self.code, message=self.reason.encode())
        return ws


@pytest.mark.parametrize(
    ("code", "retryable", "words"),
    [
        pytest.param(1000, True, "closed before the end of the audio", id="ok-too-early"),
        pytest.param(1011, True, "1011 NET-0001", id="net-error"),
        pytest.param(1008, False, "1008 DATA-0000", id="bad-audio"),
    ],
)
def test_a_stream_closed_by_the_server_before_the_end_is_an_api_error(
    code: int, retryable: bool, words: str, go_forward: AudioFrame
) -> None:
    async def test(server: DeepgramServer) -> None:
        stream = stt_for(server).stream()
        push(stream, go_forward)  # and no end of input: the server closes first
        with pytest.raises(APIError) as err:
            _ = [event async for event in stream]
        await stream.aclose()
        assert err.value.retryable is retryable and words in str(err.value)

    reason = {1000: "", 1011: "NET-0001", 1008: "DATA-0000"}[code]
    serve(test, _Closing(code, reason))


def test_the_key_is_never_in_a_repr_or_a_log(caplog: pytest.LogCaptureFixture, go_forward: AudioFrame) -> None:
    secret = "dg-do-not-leak-0123456789"

    async def test(server: DeepgramServer) -> None:
        server.api_key = secret
        stt = stt_for(server, api_key=secret)
        with caplog.at_level(logging.DEBUG):
            await stt.recognize(go_forward)
            server.api_key = KEY
            with pytest.raises(APIStatusError) as err:
                await stt.recognize(go_forward)  # refused (401): the server wants another key
        assert secret not in repr(stt) and secret not in str(stt) and secret not in stt.url
        assert secret not in str(err.value)
        assert all(secret not in record.getMessage() for record in caplog.records)
        assert all("Go forward" not in record.getMessage() for record in caplog.records)  # nor the words
        assert any(record.name.startswith("websockets") for record in caplog.records)  # the handshake was logged

    serve(test)


def test_the_options_are_checked_where_they_are_given() -> None:
    with pytest.raises(ValueError, match="ws:// or wss://"):
        DeepgramSTT(api_key=KEY, base_url="https://api.deepgram.com/v1/listen")
    stt = DeepgramSTT(api_key=KEY, language="")
    assert "language" not in stt.url and stt.url.startswith("wss://api.deepgram.com/v1/listen?model=nova-3&")
    assert stt.capabilities.streaming and stt.capabilities.interim_results
