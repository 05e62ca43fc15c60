"""The intents as tools of the real default model, through a real session: a request the grammar does not
match is carried out by a tool call, and a question that is not about the device is answered as before.
The user's words are SYNTHETIC (Piper), heard by the real STT."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from appliance.agent import AgentSession, SessionOptions
from appliance.agent import events as ev
from appliance.audio.io import FileInput, RecordingOutput
from appliance.intents.grammar import match
from appliance.intents.handler import IntentHandler
from appliance.intents.timers import TimerClock, TimerStore
from appliance.intents.tools import DeviceAgent
from appliance.intents.volume import Mixer
from tests.helpers import join, run, silence


async def _ring(timer: Any, late_by: float) -> None:
    return None


def ask_device(handler: IntentHandler, request: str, engines: tuple[Any, ...], synth: Any) -> tuple[list[str], str]:
    """``request`` spoken to a session whose agent has the device's tools: the tools called, and the last reply."""
    vad, stt, llm, tts = engines

    async def go() -> tuple[list[str], str]:
        options = SessionOptions(require_wake_word=False, earcons=False)
        session = AgentSession(vad=vad, stt=stt, llm=llm, tts=tts, options=options, intents=handler)
        executed: list[ev.FunctionToolsExecutedEvent] = []
        session.on(ev.EventType.FUNCTION_TOOLS_EXECUTED, executed.append)
        output = RecordingOutput(tts.sample_rate, realtime=True)
        audio = join(silence(0.5), synth(request).data, silence(6.0))
        await session.start(
            DeviceAgent("You are a helpful voice assistant. Answer briefly.", handler),
            audio_input=FileInput(audio, realtime=True),
            audio_output=output,
        )
        try:
            await asyncio.wait_for(session.drain(), 90)
        finally:
            await session.aclose()
            await output.aclose()
        replies = [m.content for m in session.chat_ctx.messages() if m.role.value == "assistant"]
        return [c.name for e in executed for c in e.function_calls], replies[-1] if replies else ""

    return run(go())


def test_a_timer_asked_for_in_words_the_grammar_does_not_know_is_set_by_the_model(
    vad: Any, stt: Any, llm: Any, tts: Any, synth: Any, tmp_path: Path
) -> None:
    request = "Could you start a countdown of twenty minutes for my nap?"
    assert match(request) is None  # not a phrasing the grammar takes: the model has to
    store = TimerStore(tmp_path / "timers.db")
    clock = TimerClock(store, _ring)
    run(clock.start())
    handler = IntentHandler(clock, Mixer(tmp_path, pactl="/nonexistent", amixer="/nonexistent"))
    try:
        calls, reply = ask_device(handler, request, (vad, stt, llm, tts), synth)
        timers = clock.left()
    finally:
        run(clock.close())
        store.close()
    assert calls == ["set_timer"], reply
    assert len(timers) == 1 and timers[0].seconds == 20 * 60
    assert reply.strip()  # and the model said so in words


class _Phone:
    def __init__(self) -> None:
        self.rooms: list[str | None] = []

    async def start_call(self, room: str | None) -> str:
        self.rooms.append(room)
        return f"Calling {room or 'the room'}."

    async def hang_up(self) -> str:
        return "The call has ended."


def test_a_call_asked_for_in_words_the_grammar_does_not_know_is_placed_by_the_model(
    vad: Any, stt: Any, llm: Any, tts: Any, synth: Any, tmp_path: Path
) -> None:
    request = "I would like to speak with the people in the garage, please set up a call."
    assert match(request) is None
    store = TimerStore(tmp_path / "timers.db")
    handler = IntentHandler(TimerClock(store, _ring), Mixer(tmp_path, pactl="/nonexistent", amixer="/nonexistent"))
    handler.calls = phone = _Phone()
    try:
        calls, reply = ask_device(handler, request, (vad, stt, llm, tts), synth)
    finally:
        store.close()
    assert calls == ["start_call"] and phone.rooms == ["garage"], reply


def test_what_the_model_reads_ahead_offers_no_device_tool(tmp_path: Path) -> None:
    """A device tool is offered only on a turn whose words speak of it, so the prompt read while the user
    speaks (``LLM.prefill``) is the one without tools, which most turns are given."""
    store = TimerStore(tmp_path / "timers.db")
    handler = IntentHandler(TimerClock(store, _ring), Mixer(tmp_path, pactl="/nonexistent", amixer="/nonexistent"))
    handler.calls = _Phone()
    try:
        agent = DeviceAgent("You are a helpful voice assistant.", handler)
        specs = [tool.spec for tool in agent.tools]
        assert {"set_timer", "start_call"} <= {s.name for s in specs}
        assert agent.tools_before_words(specs) == []
    finally:
        store.close()
