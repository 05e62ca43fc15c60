"""The agent session with real models, a recording as its microphone and a real-time recording speaker.

Wake phrases, "Mm-hmm" and the texts the agent says are SYNTHETIC (Piper); "go forward ten meters"
is REAL recorded speech.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from appliance.agent import Agent, AgentSession, AgentState, SessionOptions
from appliance.agent import events as ev
from appliance.audio.frame import AudioFrame
from appliance.audio.io import BLOCK_SECONDS, FileInput, RecordingOutput
from appliance.bench import normalize_words
from tests.agent.recorder import Run
from tests.helpers import join, run, silence

STORY = (
    "Once upon a time, a small dragon lived in a castle on a hill. Every morning it counted the towers, "
    "and every evening it counted the stars. One day it found a door it had never seen before."
)


async def converse(
    engines: dict[str, Any],
    audio: AudioFrame,
    script: Callable[[AgentSession], Awaitable[None]] | None = None,
    **options: Any,
) -> Run:
    opts = SessionOptions(**{"earcons": False, **options})
    session = AgentSession(options=opts, **engines)
    output = RecordingOutput(engines["tts"].sample_rate, realtime=True)
    result = Run(session, output)
    await session.start(Agent(), audio_input=FileInput(audio, realtime=True), audio_output=output)
    try:
        if script is not None:
            await script(session)
        await asyncio.wait_for(session.drain(), 90)
    finally:
        await session.aclose()
        await output.aclose()
    return result


@pytest.fixture
def engines(jarvis, vad, stt, llm, tts) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return {"wake": jarvis, "vad": vad, "stt": stt, "llm": llm, "tts": tts}


def blocks_after(output: RecordingOutput, seconds: float) -> np.ndarray:
    block = int(BLOCK_SECONDS * output.sample_rate)
    return output.audio.data[int(seconds * output.sample_rate) // block * block :]


def test_say_then_interrupt_cuts_the_speech_and_keeps_what_was_heard(engines) -> None:
    async def script(session: AgentSession) -> None:
        handle = session.say(STORY)
        await asyncio.sleep(2.0)
        handle.interrupt()
        await asyncio.wait_for(handle.wait_for_playout(), 2)
        assert handle.interrupted and handle.done()
        assert 0 < len(handle.heard_text) < len(STORY) and STORY.startswith(handle.heard_text)

    result = run(converse(engines, join(silence(4.0)), script, require_wake_word=False))
    items = [e.item for e in result.of(ev.ConversationItemAddedEvent)]
    assert items[-1].interrupted and STORY.startswith(items[-1].content)
    metrics = result.of(ev.MetricsCollectedEvent)[-1].metrics
    assert metrics.interrupted and 0.5 < metrics.played < 3.0
    # after the cut the recording speaker plays nothing (the cut lands within one 20 ms block)
    cut_at = metrics.played + 0.5  # generous: where speech began in the recording
    assert not blocks_after(result.output, cut_at + 0.5).any()


def test_say_without_interruptions_cannot_be_cut(engines) -> None:
    async def script(session: AgentSession) -> None:
        handle = session.say("This will not be cut.", allow_interruptions=False)
        with pytest.raises(RuntimeError, match="does not allow interruptions"):
            handle.interrupt()
        session.interrupt()  # the session skips it too
        await asyncio.wait_for(handle.wait_for_playout(), 10)

    result = run(converse(engines, join(silence(3.0)), script, require_wake_word=False))
    metrics = result.of(ev.MetricsCollectedEvent)[0].metrics
    # played to its end: the sentence is about 1 s long, and Piper's lengths vary by a few percent (0.99 s seen)
    assert not metrics.interrupted and metrics.played > 0.8
    items = [e.item for e in result.of(ev.ConversationItemAddedEvent)]
    assert items[-1].content == "This will not be cut." and not items[-1].interrupted


def test_generate_reply_answers_and_reports_metrics(engines) -> None:
    async def script(session: AgentSession) -> None:
        handle = session.generate_reply(user_input="What is the capital of France?")
        await asyncio.wait_for(handle.wait_for_playout(), 30)
        assert handle.heard_text and not handle.interrupted

    result = run(converse(engines, join(silence(3.0)), script, require_wake_word=False))
    roles = [e.item.role.value for e in result.of(ev.ConversationItemAddedEvent)]
    assert roles == ["user", "assistant"]
    assert [e.source for e in result.of(ev.SpeechCreatedEvent)] == ["generate_reply"]
    metrics = result.of(ev.MetricsCollectedEvent)[0].metrics
    assert metrics.llm_ttft is not None and metrics.tts_ttfb is not None and metrics.played > 0.3
    states = [e.new_state for e in result.of(ev.AgentStateChangedEvent)]
    assert states[:3] == [AgentState.LISTENING, AgentState.THINKING, AgentState.SPEAKING]


def test_talking_over_pauses_and_a_real_question_becomes_the_next_turn(engines, go_forward) -> None:
    async def script(session: AgentSession) -> None:
        session.say(STORY)

    audio = join(silence(2.5), go_forward.data, silence(4.0))
    result = run(converse(engines, audio, script, require_wake_word=False))
    assert result.of(ev.SpeechPausedEvent), "talk-over did not pause the reply"
    finals = [e for e in result.of(ev.UserInputTranscribedEvent) if e.is_final]
    assert finals and "go forward" in normalize_words(finals[0].transcript)
    story = next(e.item for e in result.of(ev.ConversationItemAddedEvent) if e.item.role.value == "assistant")
    assert story.interrupted and len(story.content) < len(STORY)
    assert len(result.of(ev.MetricsCollectedEvent)) == 2  # the cut story, then the answer


@pytest.fixture(scope="module")
def hum(synth) -> AudioFrame:  # type: ignore[no-untyped-def]
    """SYNTHETIC "mm-hmm, mm-hmm" (the repeatable test voice): a hum, no words."""
    return synth("Mm-hmm, mm-hmm.")


def test_a_hum_over_the_reply_is_a_false_interruption_and_the_reply_resumes(engines, hum) -> None:

    async def script(session: AgentSession) -> None:
        session.say(STORY)

    audio = join(silence(2.5), hum.data, silence(12.0))
    result = run(converse(engines, audio, script, require_wake_word=False))
    assert result.of(ev.SpeechPausedEvent), "the hum was too short to test a pause"
    assert result.of(ev.AgentFalseInterruptionEvent), [e for e in result.events if "Transcri" in type(e).__name__]
    story = next(e.item for e in result.of(ev.ConversationItemAddedEvent) if e.item.role.value == "assistant")
    assert not story.interrupted and story.content == STORY


def test_a_short_word_over_the_reply_does_not_pause_it(engines, go_forward) -> None:
    word = go_forward.data[: int(0.25 * 16000) + np.flatnonzero(np.abs(go_forward.data) > 2000)[0]]

    async def script(session: AgentSession) -> None:
        session.say(STORY)

    result = run(converse(engines, join(silence(2.5), word, silence(12.0)), script, require_wake_word=False))
    assert not result.of(ev.SpeechPausedEvent)
    assert not result.of(ev.MetricsCollectedEvent)[0].metrics.interrupted


def test_listening_times_out_back_to_waiting_for_the_wake_word(engines, synth) -> None:
    audio = join(silence(0.3), synth("Hey, Jarvis.").data, silence(3.0))
    result = run(converse(engines, audio, listening_timeout=1.0))
    changes = [(e.new_state, e.reason) for e in result.of(ev.AgentStateChangedEvent)]
    assert (AgentState.LISTENING, "wake word") in changes
    assert (AgentState.WAITING_FOR_WAKE, "listening timeout") in changes


def test_a_follow_up_needs_no_wake_word(engines, synth, go_forward) -> None:
    question = synth("What is the capital of France?")
    audio = join(silence(0.3), synth("Hey, Jarvis.").data, silence(0.4), question.data, silence(4.5), go_forward.data)
    result = run(converse(engines, join(audio.data, silence(5.0)), follow_up_window=8.0))
    finals = [e.transcript for e in result.of(ev.UserInputTranscribedEvent) if e.is_final]
    assert len(finals) == 2 and "go forward" in normalize_words(finals[1])


def test_finish_sentence_plays_to_the_end_of_the_current_sentence_then_stops(engines, tts) -> None:
    """The graceful stop: no new turns, the sentence being spoken ends, the rest of the reply is dropped."""
    first = "Once upon a time, a small dragon lived in a castle on a hill."
    first_seconds = tts.synthesize_sync(first).seconds
    outcome: dict[str, Any] = {}

    async def script(session: AgentSession) -> None:
        handle = session.say(STORY)
        await asyncio.sleep(1.0)  # inside the first sentence
        outcome["finished"] = await session.finish_sentence(8.0)
        outcome["state"] = session.state
        await asyncio.wait_for(handle.wait_for_playout(), 3)
        outcome["heard"] = handle.heard_text

    result = asyncio.run(converse(engines, join(silence(1.0)), script, require_wake_word=False))
    voiced = np.flatnonzero(np.abs(result.output.audio.data.astype(np.int32)) > 300)
    played = voiced[-1] / result.output.sample_rate if voiced.size else 0.0
    assert outcome["finished"], "the speaker did not fall silent within the bound"
    assert 2.0 < played < 6.0, f"played {played:.2f} s: not the first sentence alone"
    assert first_seconds - 0.5 < played < first_seconds + 1.0, f"first sentence {first_seconds:.2f} s"
    assert outcome["heard"].startswith("Once upon a time") and "counted" not in outcome["heard"]


def test_how_much_of_the_last_sentence_was_heard_is_known_from_another_thread(engines, tts) -> None:
    """A stop that cannot wait for the sentence to end (a second signal) asks from its own thread what was heard:
    after ``finish_sentence`` the output no longer reports the position of a reply still being written, yet the
    answer follows the speaker word by word up to the end of the sentence."""
    first = "Once upon a time, a small dragon lived in a castle on a hill."
    heard: list[Any] = []

    async def script(session: AgentSession) -> None:
        speaking = asyncio.Event()
        session.on(ev.EventType.AGENT_STATE_CHANGED, lambda e: e.new_state is AgentState.SPEAKING and speaking.set())
        handle = session.say(" ".join([STORY] * 12))  # still being synthesized when the sentence ends
        await asyncio.wait_for(speaking.wait(), 10)
        await asyncio.sleep(0.8)  # a couple of words into the first sentence
        stop = asyncio.create_task(session.finish_sentence(8.0), name="finish-sentence")
        for wait in (0.05, 1.0):
            await asyncio.sleep(wait)
            heard.append(await asyncio.to_thread(session.heard_so_far))
        assert await stop, "the speaker did not fall silent at the end of the sentence"
        heard.append(await asyncio.to_thread(session.heard_so_far))
        await asyncio.wait_for(handle.wait_for_playout(), 60)
        heard.append(handle.heard_text)

    asyncio.run(converse(engines, join(silence(1.0)), script, require_wake_word=False))
    early, later, ended, final = heard
    assert early is not None and later is not None and ended is not None, heard
    assert early.interrupted and later.interrupted and ended.interrupted
    assert early.content.startswith("Once")
    assert later.content.startswith(early.content) and len(later.content) > len(early.content), heard
    assert ended.content == final == first, heard  # the whole sentence once it has played, and no more


@pytest.mark.parametrize("detector", [True, False], ids=["turn-detector", "fixed-silence"])
def test_a_pause_mid_sentence_is_waited_through_by_the_turn_detector(engines, turn_detector, synth, detector) -> None:
    """SYNTHETIC speech (Piper): a request with a 0.8 s pause after "and"."""
    first, second = synth("Set a timer for ten minutes and"), synth("remind me to check the oven.")
    audio = join(silence(0.5), first.data, silence(0.8), second.data, silence(2.5))
    used = {**engines, "turn_detector": turn_detector} if detector else engines
    result = run(converse(used, audio, require_wake_word=False))
    users = [e.item.content for e in result.of(ev.ConversationItemAddedEvent) if e.item.role.value == "user"]
    if not detector:
        assert len(users) == 2  # the fixed 0.5 s rule cuts the sentence at its pause
        return
    assert len(users) == 1, users
    words = normalize_words(users[0])
    assert "timer" in words and "oven" in words
    metrics = result.of(ev.MetricsCollectedEvent)[0].metrics
    assert metrics.turn_completion is not None  # judged (Piper's two halves never sound finished: the 1.5 s wait)
