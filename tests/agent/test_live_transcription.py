"""A streaming STT (Deepgram's websocket, on its loopback server) hears the user as they speak: interim
transcripts arrive before the end of speech, and the turn's final transcript soon after it. If the stream
breaks, the recording goes to the next provider (the real whisper.cpp) in the same turn.

"go forward ten meters" is REAL recorded speech; the loopback server's transcripts are scripted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.agent import events as ev
from appliance.audio.frame import AudioFrame
from appliance.providers.deepgram import DeepgramSTT
from appliance.providers.fallback_stt import FallbackSTT
from appliance.rig.loopback.deepgram import DeepgramServer
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.server import ServerThread, serve_in_thread
from tests.agent.scripted import ScriptedLLM, ScriptedTTS
from tests.agent.test_session import converse
from tests.helpers import join, run, silence

SAID = "Go forward ten meters."


@pytest.fixture(scope="module")
def deepgram() -> Iterator[ServerThread]:
    server = DeepgramServer(api_key="k")
    server.utterances = [SAID] * 20
    with serve_in_thread(server) as thread:
        yield thread


def engines(vad: Any, stt: Any) -> dict[str, Any]:
    return {"wake": None, "vad": vad, "stt": stt, "llm": ScriptedLLM("Off we go."), "tts": ScriptedTTS()}


def question(go_forward: AudioFrame) -> AudioFrame:
    return join(silence(0.5), go_forward.data, silence(1.5))


def test_interim_transcripts_come_while_the_user_speaks_and_the_final_right_after(
    vad, deepgram: ServerThread, go_forward
) -> None:  # type: ignore[no-untyped-def]
    server = deepgram.server
    assert isinstance(server, DeepgramServer)
    stt = DeepgramSTT(api_key="k", base_url=server.ws_url)
    result = run(converse(engines(vad, stt), question(go_forward), require_wake_word=False))
    transcribed = result.of(ev.UserInputTranscribedEvent)
    stopped = result.of(ev.UserStoppedSpeakingEvent)
    interims = [e for e in transcribed if not e.is_final]
    finals = [e for e in transcribed if e.is_final]
    assert interims and stopped and finals
    assert interims[0].created_at < stopped[0].created_at  # heard while still speaking
    assert all(SAID.startswith(e.transcript) for e in interims)  # the words so far, growing
    assert finals[0].transcript == SAID
    assert result.items()[:2] == [("user", SAID), ("assistant", "Off we go.")]
    metrics = result.of(ev.MetricsCollectedEvent)[0].metrics
    assert metrics.stt_provider == "deepgram" and not metrics.stt_speculative
    assert metrics.transcription_delay is not None and metrics.end_of_utterance_delay is not None
    # the words were in as the turn ended: the transcript follows the endpointing silence almost at once
    assert metrics.transcription_delay - metrics.end_of_utterance_delay < 0.3


@pytest.mark.parametrize(
    ("fault", "outcome"),
    [(Fault.DISCONNECT, "error"), (Fault.STATUS_500, "error"), (Fault.HANG_BEFORE_FIRST, "timeout")],
)
def test_a_stream_that_breaks_is_transcribed_locally_in_the_same_turn(
    vad, stt, deepgram: ServerThread, go_forward, fault: Fault, outcome: str
) -> None:  # type: ignore[no-untyped-def]
    server = deepgram.server
    assert isinstance(server, DeepgramServer)
    chain = FallbackSTT([DeepgramSTT(api_key="k", base_url=server.ws_url), stt], labels=["deepgram", "local"])
    deepgram.set_fault(fault)
    try:
        result = run(converse(engines(vad, chain), question(go_forward), require_wake_word=False))
    finally:
        deepgram.set_fault(Fault.NONE)
        asyncio.run(chain.pool.aclose())
    final = next(e for e in result.of(ev.UserInputTranscribedEvent) if e.is_final)
    assert "go forward" in final.transcript.lower()  # whisper.cpp heard the recording
    metrics = result.of(ev.MetricsCollectedEvent)[0].metrics
    assert metrics.stt_provider == "local"
    assert [(a.provider, a.outcome) for a in metrics.stt_failed] == [("deepgram", outcome)]
    assert result.items()[1] == ("assistant", "Off we go.")
