"""The real AgentSession over scripted engines (tests/agent/scripted.py): a second engine per stage plugs in
through the stage interfaces, and the failure paths real models cannot produce on cue are driven here.

All audio here is SYNTHETIC (constant-sample "wake phrase", noise "speech"); timeouts are short real ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest

from appliance.agent import Agent, AgentSession, AgentState, SessionOptions
from appliance.agent import events as ev
from appliance.audio.io import FileInput, RecordingOutput
from appliance.errors import APIError
from appliance.llm.base import Role
from tests.agent.recorder import Run
from tests.agent.scripted import (
    ScriptedSTT,
    clip,
    engines,
    quiet,
    speech,
    wake_phrase,
)


@pytest.fixture
def stages() -> dict[str, Any]:
    made = engines()
    yield made
    made["vad"].close()


def converse(
    stages: dict[str, Any],
    audio: np.ndarray,
    script: Callable[[AgentSession], Awaitable[None]] | None = None,
    *,
    realtime: bool = False,
    agent: Agent | None = None,
    userdata: Any = None,
    **options: Any,
) -> Run:
    async def go() -> Run:
        opts = SessionOptions(**{"earcons": False, **options})
        session = AgentSession(options=opts, userdata=userdata, **stages)
        output = RecordingOutput(stages["tts"].sample_rate, realtime=realtime)
        result = Run(session, output)
        await session.start(
            agent or Agent(), audio_input=FileInput(clip(audio), realtime=realtime), audio_output=output
        )
        stages["tts"].spoken.clear()  # the apology, made at start: what follows is what the session said
        try:
            if script is not None:
                await script(session)
            await asyncio.wait_for(session.drain(), 20)
        finally:
            await session.aclose()
            await output.aclose()
        return result

    return asyncio.run(go())


QUESTION = np.concatenate([quiet(0.3), wake_phrase(), quiet(0.7), speech(1.0), quiet(1.0)])
"""The wake phrase, a breath, a one-second question."""


def test_a_second_engine_for_every_stage_runs_through_the_real_session(stages) -> None:
    result = converse(stages, QUESTION)
    assert [e.name for e in result.of(ev.WakeWordDetectedEvent)] == ["scripted"]
    assert result.items() == [("user", "what time is it"), ("assistant", "It is noon. Time for lunch.")]
    assert stages["tts"].spoken and result.output.audio.seconds > 1.0
    assert result.states()[-1] is AgentState.CLOSED
    metrics = result.of(ev.MetricsCollectedEvent)[0].metrics
    assert metrics.llm_ttft is not None and metrics.tts_ttfb is not None


def test_an_llm_failing_mid_reply_is_an_error_a_tone_and_back_to_listening(stages) -> None:
    stages["llm"].reply = "First one is spoken. Second sentence never comes out at all."
    stages["llm"].fail_after = 6
    result = converse(stages, QUESTION, earcons=True)
    errors = result.of(ev.ErrorEvent)
    assert errors and "mid-reply" in str(errors[0].error) and errors[0].recoverable
    spoken = stages["tts"].spoken
    assert spoken[0] == "First one is spoken."  # what came before the failure was said
    assert "never" not in " ".join(spoken)
    assert AgentState.LISTENING in result.states()[result.states().index(AgentState.SPEAKING) :]
    # the error tone follows the reply: more audio than the spoken sentence alone
    assert result.output.audio.seconds > 0.06 * len("First one is spoken.") + 0.1


def test_a_tts_failing_mid_reply_is_an_error_a_tone_and_back_to_listening(stages) -> None:
    tts = stages["tts"]
    stages["llm"].reply = "First one is spoken. Then the voice breaks down completely."
    real = tts._speak

    async def speak(text: str):  # type: ignore[no-untyped-def]
        if tts.spoken:
            raise APIError("scripted TTS failure mid-reply", retryable=False)
        return await real(text)

    tts._speak = speak
    result = converse(stages, QUESTION, earcons=True)
    errors = result.of(ev.ErrorEvent)
    assert errors and "TTS failure mid-reply" in str(errors[0].error)
    assert tts.spoken == ["First one is spoken."]
    assert result.items()[-1] == ("assistant", "First one is spoken.")  # what was said, not what was meant
    assert result.states()[-2] is AgentState.LISTENING  # the follow-up window, then closed


APOLOGY = "Sorry, try again."


@pytest.mark.parametrize("stage", ["llm", "stt"])
def test_a_turn_failing_before_any_reply_is_heard_says_the_apology_made_at_start(stages, stage: str) -> None:
    if stage == "llm":
        stages["llm"].fail_after = 0
    else:
        stages["stt"].mode = "fail"
    result = converse(stages, QUESTION, apology=APOLOGY)
    assert [e.source for e in result.of(ev.ErrorEvent)] == ["agent" if stage == "llm" else "stt"]
    assert stages["tts"].spoken == []  # nothing synthesized at the failure: the apology was ready
    # the scripted voice speaks 60 ms per character: what played is the apology, said once
    assert result.output.audio.seconds == pytest.approx(0.06 * len(APOLOGY), abs=0.01)
    assert [role for role, _ in result.items()] == (["user"] if stage == "llm" else [])  # not in the conversation
    assert result.states()[-1] is AgentState.CLOSED


def test_without_an_apology_a_failed_turn_plays_the_error_tone(stages) -> None:
    stages["llm"].fail_after = 0
    result = converse(stages, QUESTION, apology="", earcons=True)
    assert stages["tts"].spoken == [] and 0.2 < result.output.audio.seconds < 0.5  # listening tone + error tone


def test_a_tts_that_hangs_is_dropped_at_the_thinking_timeout(stages) -> None:
    stages["tts"].hang = True
    result = converse(stages, QUESTION, thinking_timeout=0.5)
    errors = result.of(ev.ErrorEvent)
    assert errors and "no reply audio after 0.5 s" in str(errors[0].error)
    assert AgentState.SPEAKING not in result.states()
    assert result.states()[-2] in (AgentState.LISTENING, AgentState.WAITING_FOR_WAKE)
    assert stages["llm"].stopped >= 1  # the LLM request was closed, not left running


def test_an_stt_that_hangs_times_out_and_the_next_utterance_is_still_heard(stages) -> None:
    stt: ScriptedSTT = stages["stt"]
    stt.mode = "hang"

    async def script(session: AgentSession) -> None:
        for _ in range(100):
            if stt.calls:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # past the transcription timeout
        stt.mode = "ok"

    audio = np.concatenate([QUESTION, speech(1.0, seed=1), quiet(1.0)])
    result = converse(stages, audio, script, realtime=True, transcription_timeout=0.3, follow_up_window=3.0)
    errors = [e for e in result.of(ev.ErrorEvent) if e.source == "stt"]
    assert errors and stt.cancelled >= 1, "the hung recognition was not cancelled"
    assert ("assistant", "It is noon. Time for lunch.") in result.items()


def test_a_reply_longer_than_max_speaking_time_is_cut(stages) -> None:
    async def script(session: AgentSession) -> None:
        handle = session.say("This is a long sentence that would play for several seconds.")
        await asyncio.wait_for(handle.wait_for_playout(), 5)
        assert handle.interrupted

    result = converse(stages, quiet(0.5), script, realtime=True, require_wake_word=False, max_speaking_time=0.5)
    assert any("reply still playing after 0.5 s" in str(e.error) for e in result.of(ev.ErrorEvent))
    assert result.of(ev.MetricsCollectedEvent)[0].metrics.played < 1.5


def test_generate_reply_instructions_steer_that_reply_only(stages) -> None:
    async def script(session: AgentSession) -> None:
        await session.generate_reply(user_input="hello", instructions="Answer in French.").wait_for_playout()
        await session.generate_reply(user_input="again").wait_for_playout()

    converse(stages, quiet(0.2), script, require_wake_word=False)
    first, second = stages["llm"].seen
    assert first.items[-1].role is Role.SYSTEM and first.items[-1].content == "Answer in French."
    assert all(m.content != "Answer in French." for m in second.items)


def test_max_history_keeps_the_instructions_and_the_last_turns(stages) -> None:
    async def script(session: AgentSession) -> None:
        for i in range(4):
            await session.generate_reply(user_input=f"question {i}").wait_for_playout()

    converse(stages, quiet(0.2), script, require_wake_word=False, max_history=3)
    last = stages["llm"].seen[-1]
    assert last.items[0].role is Role.SYSTEM
    assert [m.content for m in last.items[1:]] == ["question 2", "It is noon. Time for lunch.", "question 3"]


def test_update_agent_replaces_the_instructions_instead_of_adding_a_second_set(stages) -> None:
    async def script(session: AgentSession) -> None:
        session.update_agent(Agent("You are a pirate."))
        await session.generate_reply(user_input="hello").wait_for_playout()

    converse(stages, quiet(0.2), script, require_wake_word=False, agent=Agent("You are a butler."))
    ctx = stages["llm"].seen[-1]
    system = [m.content for m in ctx.items if m.role is Role.SYSTEM]
    assert system == ["You are a pirate."]


def test_user_input_joins_the_history_after_the_reply_still_playing(stages) -> None:
    async def script(session: AgentSession) -> None:
        session.say("One moment please, I am still talking.")
        await asyncio.sleep(0.3)
        await session.generate_reply(user_input="and now?").wait_for_playout()

    result = converse(stages, quiet(0.5), script, realtime=True, require_wake_word=False)
    roles = [role for role, _ in result.items()]
    assert roles == ["assistant", "user", "assistant"], result.items()


def test_an_early_transcript_is_kept_when_the_user_stays_silent(stages) -> None:
    result = converse(stages, QUESTION, realtime=True)
    assert stages["stt"].calls == 1
    assert result.of(ev.MetricsCollectedEvent)[0].metrics.stt_speculative


def test_an_early_transcript_is_discarded_when_the_user_goes_on(stages) -> None:
    heard: list[float] = []

    def text(audio: Any) -> str:
        heard.append(audio.seconds)
        return "what time is it"

    stages["stt"].text = text
    pause = np.concatenate([speech(0.8), quiet(0.35), speech(0.8, seed=2)])  # a pause shorter than endpointing
    audio = np.concatenate([quiet(0.3), wake_phrase(), quiet(0.7), pause, quiet(1.0)])
    result = converse(stages, audio, realtime=True)
    interim = [e for e in result.of(ev.UserInputTranscribedEvent) if not e.is_final]
    assert len(heard) == 2 and len(interim) == 2
    # the first early transcript (0.8 s) was dropped when the user went on; the turn used the whole utterance
    assert heard[1] > heard[0] + 0.7
    assert result.of(ev.MetricsCollectedEvent)[0].metrics.stt_speculative


def test_a_failing_wake_model_or_vad_is_restarted_and_the_listener_goes_on(stages) -> None:
    stages["wake"].fail_once = True
    stages["vad"].fail_once = True
    audio = np.concatenate([quiet(1.0), speech(0.5), quiet(1.5), QUESTION])
    result = converse(stages, audio, realtime=True)
    sources = {e.source for e in result.of(ev.ErrorEvent)}
    assert {"vad"} <= sources, sources
    assert stages["vad"].streams >= 2
    assert ("assistant", "It is noon. Time for lunch.") in result.items()


def test_a_wake_scoring_failure_is_reported_and_the_next_wake_word_works(stages) -> None:
    stages["wake"].fail_once = True
    audio = np.concatenate([quiet(0.3), wake_phrase(), quiet(3.5), QUESTION])
    result = converse(stages, audio, realtime=True)
    assert [e.source for e in result.of(ev.ErrorEvent)] == ["wake"]
    assert ("assistant", "It is noon. Time for lunch.") in result.items()


def test_a_failing_event_callback_is_isolated_from_the_others(stages) -> None:
    seen: list[str] = []

    def broken(_: Any) -> None:
        raise RuntimeError("a subscriber's bug")

    async def script(session: AgentSession) -> None:
        session.on("conversation_item_added", broken)
        session.on("conversation_item_added", lambda e: seen.append(e.item.content))
        await session.generate_reply(user_input="hi").wait_for_playout()

    converse(stages, quiet(0.2), script, require_wake_word=False)
    assert seen == ["hi", "It is noon. Time for lunch."]


def test_a_barge_in_whose_cut_reply_is_slow_to_let_go_still_gets_its_answer(stages, monkeypatch) -> None:
    """The cut reply's playout outlasts the cut bound: the user's turn is answered anyway, never lost."""
    import appliance.agent.talkover as talkover

    monkeypatch.setattr(talkover, "CUT_TIMEOUT", 0.0)
    stages["stt"].text = lambda audio: "stop and tell me the time"

    async def script(session: AgentSession) -> None:
        session.say("A very long story begins here and goes on and on and on for quite a while.")

    audio = np.concatenate([quiet(1.0), speech(1.2), quiet(2.5)])
    result = converse(stages, audio, script, realtime=True, require_wake_word=False)
    assert result.of(ev.SpeechPausedEvent)
    assert ("user", "stop and tell me the time") in result.items()
    assert result.items()[-1] == ("assistant", "It is noon. Time for lunch.")
    assert AgentState.PAUSED in result.states()


def test_while_a_reply_plays_its_item_is_updated_as_far_as_it_was_heard(stages) -> None:
    stages["llm"].reply = "The first sentence is short. The second one takes a little longer to say."
    result = converse(stages, QUESTION, realtime=True)
    updates = [e.item for e in result.of(ev.ConversationItemUpdatedEvent)]
    final = [e.item for e in result.of(ev.ConversationItemAddedEvent) if e.item.role is Role.ASSISTANT][-1]
    assert len(updates) >= 2 and all(u.id == final.id and u.interrupted for u in updates)
    texts = [u.content for u in updates]
    assert texts == sorted(texts, key=len) and all(final.content.startswith(t) for t in texts)
    assert final.content == stages["llm"].reply.strip() and not final.interrupted


@pytest.mark.parametrize("heard", ["8th of this, stop.", "Hey Jarvis, stop."])
def test_a_stop_after_an_address_over_a_reply_stops_it(stages, tmp_path, heard: str) -> None:
    """Over a reply, Whisper may make anything of the wake phrase ("8th of this", heard so on the open-speaker
    card) while the command after it is clear: the command is taken, not the whole text given to the model."""
    from appliance.intents.handler import IntentHandler
    from appliance.intents.timers import TimerClock, TimerStore
    from appliance.intents.volume import Mixer

    store = TimerStore(tmp_path / "timers.db")
    mixer = Mixer(tmp_path, pactl="/nonexistent", amixer="/nonexistent")
    stages["intents"] = IntentHandler(TimerClock(store, lambda timer: None), mixer)
    stages["stt"].text = lambda audio: heard
    story = "A very long story begins here and goes on and on and on for quite a while."

    async def script(session: AgentSession) -> None:
        session.say(story)

    audio = np.concatenate([quiet(1.0), speech(1.2), quiet(2.5)])
    try:
        result = converse(stages, audio, script, realtime=True, require_wake_word=False)
    finally:
        store.close()
    assert result.of(ev.SpeechPausedEvent)
    assert not stages["llm"].asked_at, "the talk-over went to the model"
    replies = [text for role, text in result.items() if role == "assistant"]
    assert replies and replies[0] != story  # cut where the user stopped it
    assert len(replies) == 1


def test_the_wake_word_over_a_reply_stops_it_and_the_device_listens(stages) -> None:
    """The user says the wake word over a reply: it stops at once (the words after it are not needed for
    that, and under the reply's echo they may come out as anything), and what follows is a new turn."""
    stages["stt"].text = lambda audio: "what time is it"
    story = "A very long story begins here and goes on and on and on for quite a while, and longer still."

    async def script(session: AgentSession) -> None:
        session.say(story)

    audio = np.concatenate([quiet(1.0), wake_phrase(), quiet(0.7), speech(1.0), quiet(2.5)])
    result = converse(stages, audio, script, realtime=True)
    assert [e.name for e in result.of(ev.WakeWordDetectedEvent)] == ["scripted"]
    items = result.items()
    assert items[0][0] == "assistant" and items[0][1] != story  # cut where the wake word stopped it
    assert items[1:] == [("user", "what time is it"), ("assistant", "It is noon. Time for lunch.")]


def test_the_model_reads_the_conversation_up_to_the_users_words_while_they_speak(stages) -> None:
    """At the wake word, and again when the follow-up window opens after a reply, the model is given the
    conversation as the reply will be (that reply included) before the request for the next one comes."""
    llm = stages["llm"]
    audio = np.concatenate([QUESTION, quiet(2.5), speech(1.0, seed=1), quiet(1.0)])
    result = converse(stages, audio, realtime=True, follow_up_window=3.0)
    assert [role for role, _ in result.items()] == ["user", "assistant", "user", "assistant"]
    first = llm.log.index("chat")
    second = llm.log.index("chat", first + 1)
    assert "prefill" in llm.log[:first] and "prefill" in llm.log[first:second]  # each before its turn's request
    at_wake = llm.prefilled[0]
    after_reply = llm.prefilled[llm.log[:second].count("prefill") - 1]
    assert [m.role for m in at_wake.items] == [Role.SYSTEM]
    assert [(m.role, m.content) for m in after_reply.items[1:]] == [
        (Role.USER, "what time is it"),
        (Role.ASSISTANT, "It is noon. Time for lunch."),
    ]


def test_words_begun_as_a_reply_ends_are_answered_however_short_the_follow_up_window(stages) -> None:
    """The user starts speaking as a short reply ends, and goes on past the follow-up window: the window
    waits for them to finish, and their words are answered (they were not long enough over the reply to
    pause it)."""

    async def script(session: AgentSession) -> None:
        session.say("Here you go.")

    audio = np.concatenate([quiet(0.4), speech(2.5), quiet(1.5)])
    result = converse(stages, audio, script, realtime=True, follow_up_window=0.5, min_interruption_duration=3.0)
    assert result.items() == [
        ("assistant", "Here you go."),
        ("user", "what time is it"),
        ("assistant", "It is noon. Time for lunch."),
    ]


def test_a_talk_over_whose_transcript_is_unsure_is_heard_again_from_where_it_paused_the_reply(stages) -> None:
    """Over a reply, the start of the user's words comes through damaged (the echo canceller and its gate),
    and the transcript of the whole talk-over is no words; the part after the reply paused, spoken to a quiet
    speaker, is: it is transcribed again, the reply is cut, and the user is answered."""
    heard: list[float] = []

    def text(audio: Any) -> str:
        heard.append(audio.seconds)
        return "mm" if len(heard) == 1 else "stop and tell me the time"

    stages["stt"].text = text

    async def script(session: AgentSession) -> None:
        session.say("A very long story begins here and goes on and on and on for quite a while.")

    audio = np.concatenate([quiet(1.0), speech(2.0), quiet(2.5)])
    result = converse(stages, audio, script, realtime=True, require_wake_word=False)
    assert result.of(ev.SpeechPausedEvent)
    assert not result.of(ev.AgentFalseInterruptionEvent)
    assert len(heard) == 2 and heard[1] < heard[0] - 0.3, heard  # the second time, only what followed the pause
    assert ("user", "stop and tell me the time") in result.items()
    assert result.items()[-1] == ("assistant", "It is noon. Time for lunch.")
