"""Tasks and handoff through the real session with a scripted model that asks for calls: the hooks' order,
a refused handover, on_end_of_turn, an agent's own model, and the shipped kitchen-timer example."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from appliance.agent import Agent, AgentSession
from appliance.agent import events as ev
from appliance.agent.agent import AgentTask, StopResponse
from appliance.agent.examples import General, Kitchen, KitchenTimers
from appliance.agent.tools import function_tool
from appliance.llm.base import ChatContext, ChatMessage, FunctionOutputItem, Role
from appliance.llm.chat import AgentHandoffItem
from tests.agent.scripted import engines
from tests.agent.test_scripted_session import QUESTION, converse, quiet
from tests.agent.test_tools import ToolScriptLLM, items


def run(llm: Any, agent: Agent, audio: Any = QUESTION, script: Any = None, **options: Any):  # type: ignore[no-untyped-def]
    stages = engines()
    stages["llm"] = llm
    try:
        return converse(stages, audio, script, agent=agent, **options)
    finally:
        stages["vad"].close()


def system_of(ctx: ChatContext) -> list[str]:
    return [m.content for m in ctx.messages() if m.role is Role.SYSTEM]


def test_a_tool_hands_the_conversation_to_a_task_and_the_task_hands_it_back() -> None:
    kitchen = Kitchen()
    llm = ToolScriptLLM(
        [
            [("kitchen_timers", "{}")],  # the general agent hands over
            [("set_timer", '{"name": "pasta", "minutes": 9}')],  # the task, in the same reply
            [("done", "{}")],
            "Your pasta timer is set.",
        ]
    )
    result = run(llm, General(kitchen, "You are the general assistant."), userdata=kitchen)
    # the hooks: old on_exit, the handoff item, new on_enter, both ways (after the first on_enter at start)
    assert kitchen.log == ["general: enter", "general: exit", "timers: enter", "timers: exit", "general: enter"]
    handoffs = [(i.old_agent, i.new_agent) for i in items(result) if isinstance(i, AgentHandoffItem)]
    assert handoffs == [("General", "KitchenTimers"), ("KitchenTimers", "General")]
    # the task answered with its own instructions and tools, and the user's words were still there
    task_request, tools_offered = llm.requests[1]
    assert system_of(task_request) == [
        "You manage kitchen timers. Set them, say which are running, and hand back when the user is done."
    ]
    assert sorted(t.name for t in tools_offered) == ["done", "list_timers", "set_timer"]
    assert any(m.role is Role.USER for m in task_request.messages())
    assert system_of(llm.requests[3][0]) == ["You are the general assistant."]  # handed back
    assert items(result)[-1].content == "Your pasta timer is set."
    outputs = [(i.name, i.output) for i in items(result) if isinstance(i, FunctionOutputItem)]
    assert outputs == [
        ("kitchen_timers", "handed over to KitchenTimers"),
        ("set_timer", "pasta timer set for 9 minutes"),
        ("done", "handed over to General"),
    ]
    assert list(kitchen.timers) == ["pasta"]
    metrics = result.of(ev.MetricsCollectedEvent)[0].metrics
    assert [t.name for t in metrics.tool_calls] == ["kitchen_timers", "set_timer", "done"]


def test_the_timer_task_keeps_its_timers_in_the_session_userdata() -> None:
    kitchen = Kitchen()
    llm = ToolScriptLLM(
        [
            [("set_timer", '{"name": "eggs", "minutes": 7}')],
            [("set_timer", '{"name": "tea", "minutes": 0}')],
            [("list_timers", "{}")],
            "Eggs are on.",
        ]
    )
    result = run(llm, KitchenTimers(General(kitchen)), userdata=kitchen)
    outputs = [i for i in items(result) if isinstance(i, FunctionOutputItem)]
    assert outputs[0].output == "eggs timer set for 7 minutes"
    assert outputs[1].is_error and "minutes must be more than 0" in outputs[1].output
    assert outputs[2].output.startswith('["eggs: 7 minutes left"') and list(kitchen.timers) == ["eggs"]


def test_a_task_whose_on_enter_fails_is_refused_and_the_previous_agent_stays() -> None:
    class Broken(AgentTask):
        async def on_enter(self) -> None:
            raise RuntimeError("no kitchen here")

    class Front(Agent):
        @function_tool
        async def go(self) -> Agent:
            """Go to the broken task."""
            return Broken("You are broken.")

    llm = ToolScriptLLM([[("go", "{}")], "Still the front desk."])
    result = run(llm, Front("You are the front desk."))
    errors = [e for e in result.of(ev.ErrorEvent) if "no kitchen here" in str(e.error)]
    assert errors and errors[0].source == "agent"
    assert system_of(llm.requests[1][0]) == ["You are the front desk."]  # the refused task never spoke
    handoffs = [(i.old_agent, i.new_agent) for i in items(result) if isinstance(i, AgentHandoffItem)]
    assert handoffs == [("Front", "Broken"), ("Broken", "Front")]
    assert result.session.current_agent.name == "Front"


def test_on_end_of_turn_may_edit_the_turn_stop_the_reply_or_fail_harmlessly() -> None:
    class Editor(Agent):
        def __init__(self, mode: str) -> None:
            self.mode = mode
            super().__init__("Be brief.")

        async def on_end_of_turn(self, chat_ctx: ChatContext, new_message: ChatMessage) -> None:
            if self.mode == "edit":
                new_message.content += " (the user is in the kitchen)"
            elif self.mode == "stop":
                raise StopResponse()
            else:
                raise ValueError("hook bug")

    for mode, replies in (("edit", 1), ("stop", 0), ("fail", 1)):
        llm = ToolScriptLLM(["Noted."])
        result = run(llm, Editor(mode))
        assert len(llm.requests) == replies, mode
        assistant = [i for i in items(result) if isinstance(i, ChatMessage) and i.role is Role.ASSISTANT]
        assert len(assistant) == replies, mode
        if mode == "edit":
            said = [m.content for m in llm.requests[0][0].messages() if m.role is Role.USER]
            assert said[-1].endswith("(the user is in the kitchen)")  # this reply's context only
            recorded = [i.content for i in items(result) if isinstance(i, ChatMessage) and i.role is Role.USER]
            assert not recorded[-1].endswith("(the user is in the kitchen)")


def test_update_agent_runs_the_hooks_and_the_new_agent_may_bring_its_own_model() -> None:
    log: list[str] = []
    own = ToolScriptLLM(["From the task's own model."])

    class Logged(Agent):
        async def on_enter(self) -> None:
            log.append(f"{self.instructions}: enter")

        async def on_exit(self) -> None:
            log.append(f"{self.instructions}: exit")

    async def script(session: AgentSession) -> None:
        session.update_agent(Logged("second", llm=own))
        await asyncio.sleep(0.05)
        await session.generate_reply(user_input="hello").wait_for_playout()

    shared = ToolScriptLLM(["From the session's model."])
    result = run(shared, Logged("first"), quiet(0.2), script, require_wake_word=False)
    assert log == ["first: enter", "first: exit", "second: enter"]
    assert shared.requests == [] and len(own.requests) == 1
    assert items(result)[-1].content == "From the task's own model."


def test_an_item_handed_out_in_an_event_is_a_snapshot() -> None:
    llm = ToolScriptLLM(["It is noon."])

    async def script(session: AgentSession) -> None:
        session.on("conversation_item_added", lambda e: setattr(e.item, "content", "tampered"))
        await session.generate_reply(user_input="what time is it").wait_for_playout()
        assert [m.content for m in session.chat_ctx.messages()][1:] == ["what time is it", "It is noon."]

    run(llm, Agent(), quiet(0.2), script, require_wake_word=False)


def test_an_agent_may_override_its_llm_node_and_the_turn_still_has_its_metrics() -> None:
    class Shouting(Agent):
        async def llm_node(self, chat_ctx, tools, llm):  # type: ignore[no-untyped-def,override]
            async for chunk in Agent.llm_node(self, chat_ctx, tools, llm):
                yield dataclasses.replace(chunk, delta=chunk.delta.upper())

    llm = ToolScriptLLM(["it is noon."])
    result = run(llm, Shouting())
    assert items(result)[-1].content == "IT IS NOON."
    metrics = result.of(ev.MetricsCollectedEvent)[0].metrics
    assert metrics.llm_ttft is not None and metrics.llm_completion_tokens == 3


def test_an_agent_may_override_its_transcription_node_and_the_default_reads_no_markdown() -> None:
    class Spelled(Agent):
        async def transcription_node(self, text):  # type: ignore[no-untyped-def,override]
            async for piece in Agent.transcription_node(self, text):
                yield piece.replace("noon", "twelve o'clock")

    result = run(ToolScriptLLM(["It is **noon**. 🕛"]), Spelled())
    assert items(result)[-1].content == "It is twelve o'clock."  # markdown and emoji gone, the override applied


def test_an_agent_hears_through_its_own_stt_and_its_stt_node_and_speaks_through_its_tts_node() -> None:
    from tests.agent.scripted import ScriptedSTT

    own = ScriptedSTT(text=lambda audio: "what is the weather")
    played: list[float] = []

    class Listening(Agent):
        async def stt_node(self, audio, stt):  # type: ignore[no-untyped-def,override]
            event = await Agent.stt_node(self, audio, stt)
            data = event.alternatives[0]
            return dataclasses.replace(event, alternatives=(dataclasses.replace(data, text=data.text.upper()),))

        async def tts_node(self, audio):  # type: ignore[no-untyped-def,override]
            async for piece in Agent.tts_node(self, audio):
                played.append(piece.frame.seconds)
                yield piece

    llm = ToolScriptLLM(["It is sunny."])
    run(llm, Listening(stt=own))
    assert own.calls >= 1  # the agent's own STT, not the session's
    asked = [m.content for m in llm.requests[0][0].messages() if m.role is Role.USER]
    assert asked == ["WHAT IS THE WEATHER"]  # what the stt_node made of it
    assert played and sum(played) > 0.5  # the reply's audio went through the tts_node


def test_say_goes_through_the_agents_tts_node_too() -> None:
    spoken: list[str] = []

    class Quiet(Agent):
        async def tts_node(self, audio):  # type: ignore[no-untyped-def,override]
            async for piece in Agent.tts_node(self, audio):
                spoken.append(piece.text)
                yield piece

    async def script(session: AgentSession) -> None:
        await session.say("Hello there.").wait_for_playout()

    run(ToolScriptLLM([]), Quiet(), quiet(1.0), script, require_wake_word=False)
    assert spoken == ["Hello there."]


def test_an_agent_with_its_own_vad_is_heard_through_it_and_a_handover_switches_back() -> None:
    from tests.agent.scripted import EnergyVAD

    own = EnergyVAD()
    kitchen = Kitchen()

    class Listening(General):
        def __init__(self) -> None:
            super().__init__(kitchen, "You are the general assistant.")
            self.vad = own

    llm = ToolScriptLLM([[("kitchen_timers", "{}")], "Which timer?"])
    stages = engines()
    stages["llm"] = llm
    session_vad = stages["vad"]
    try:
        result = converse(stages, QUESTION, agent=Listening(), userdata=kitchen, realtime=True)
    finally:
        session_vad.close()
        own.close()
    assert own.streams == 1  # the question was heard through the agent's own VAD
    assert session_vad.streams == 1  # the task has none: the session's VAD listens again after the handover
    assert [m.content for m in result.session.chat_ctx.messages() if m.role is Role.ASSISTANT] == ["Which timer?"]
