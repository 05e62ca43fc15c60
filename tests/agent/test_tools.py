"""AI functions: the schema from a plain async function, and every rule of a tool call run through the real
session with a scripted LLM that asks for calls (and, at the end, the real OpenAI client on its loopback
server). The audio is synthetic: a tone for speech, the scripted voice's tone for the reply."""

from __future__ import annotations

import asyncio
import enum
import json
import logging
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import pytest

from appliance.agent import Agent, AgentSession, RunContext, ToolError, function_tool
from appliance.agent import events as ev
from appliance.agent.generation import COULD_NOT_FINISH
from appliance.agent.toolcalls import CANCELLED
from appliance.llm.base import (
    LLM,
    ChatChunk,
    ChatContext,
    FunctionCall,
    FunctionCallItem,
    FunctionOutputItem,
    LLMCapabilities,
    LLMMetrics,
    LLMStream,
    ToolSpec,
)
from tests.agent.scripted import engines
from tests.agent.test_scripted_session import QUESTION, converse

BAD = "bad_arguments"
Step = str | list[tuple[str, str]]
"""What the model does in one request: say words, or ask for calls (name, arguments as JSON)."""


class ToolScriptLLM(LLM):
    """Plays ``steps`` in order, one per request (then says "Done."); keeps what it was offered and shown."""

    capabilities = LLMCapabilities(streaming=True, tool_calling=True)

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)
        self.requests: list[tuple[ChatContext, tuple[ToolSpec, ...]]] = []

    def chat(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> LLMStream:
        self.requests.append((chat_ctx.copy(), tuple(tools)))
        step = self.steps.pop(0) if self.steps else "Done."
        return _Stream(step, len(self.requests))


class _Stream(LLMStream):
    def __init__(self, step: Step, n: int) -> None:
        self.request_id = f"tool_script_{n}"
        self.metrics: LLMMetrics | None = None
        self._step, self._sent = step, False
        self._text = ""

    @property
    def text(self) -> str:
        return self._text

    async def __anext__(self) -> ChatChunk:
        await asyncio.sleep(0.005)
        if self._sent:
            self.metrics = LLMMetrics(self.request_id, 0.005, 0.01, 10, 3, False)
            raise StopAsyncIteration
        self._sent = True
        if isinstance(self._step, str):
            self._text = self._step
            return ChatChunk(self._step, self.request_id)
        calls = tuple(FunctionCall(f"call_{i}", name, args) for i, (name, args) in enumerate(self._step))
        return ChatChunk("", self.request_id, tool_calls=calls)

    async def aclose(self) -> None:
        return None


class Room(enum.Enum):
    KITCHEN = "kitchen"
    HALL = "hall"


@function_tool
async def get_time() -> str:
    """The time now, as the clock on the wall says it."""
    return "12:30"


@function_tool
async def set_light(room: Room, level: Annotated[int, "percent"], colour: Literal["warm", "cold"] = "warm") -> str:
    """Set a room's light.

    Args:
        room: which room
        level: how bright
    """
    return f"{room} at {level} ({colour})"


def run_with(llm: LLM, agent: Agent, **options: Any):  # type: ignore[no-untyped-def]
    stages = engines()
    stages["llm"] = llm
    try:
        return converse(stages, QUESTION, agent=agent, **options)
    finally:
        stages["vad"].close()


def items(result) -> list[Any]:  # type: ignore[no-untyped-def]
    return [e.item for e in result.of(ev.ConversationItemAddedEvent)]


def test_the_schema_comes_from_the_type_hints_and_the_docstring() -> None:
    assert get_time.spec == ToolSpec(
        "get_time",
        "The time now, as the clock on the wall says it.",
        {"type": "object", "properties": {}, "additionalProperties": False},
    )
    schema = set_light.parameters
    assert set_light.description == "Set a room's light."
    assert schema["required"] == ["room", "level"]
    assert schema["properties"]["room"] == {"type": "string", "enum": ["kitchen", "hall"], "description": "which room"}
    assert schema["properties"]["level"] == {"type": "integer", "description": "percent"}  # Annotated beats Args
    assert schema["properties"]["colour"] == {"type": "string", "enum": ["warm", "cold"], "default": "warm"}


def test_a_raw_schema_is_checked_and_a_bad_name_or_a_sync_function_refused() -> None:
    raw = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}

    @function_tool(name="search", raw_schema=raw, description="Search the notes.")
    async def anything(**kwargs: Any) -> str:
        return str(kwargs)

    assert anything.spec == ToolSpec("search", "Search the notes.", raw)
    with pytest.raises(ValueError, match="must be 1-64 letters"):
        function_tool(name="no spaces allowed")(anything.fn)
    with pytest.raises(TypeError, match="must be an async function"):
        function_tool(lambda: None)  # type: ignore[arg-type]


def test_a_call_is_run_and_answered_and_the_model_speaks_with_the_answer() -> None:
    llm = ToolScriptLLM([[("get_time", "{}")], "It is half past twelve."])
    result = run_with(llm, Agent("Be brief.", tools=[get_time]))
    assert [spec.name for spec in llm.requests[0][1]] == ["get_time"]
    seen = llm.requests[1][0].items
    assert isinstance(seen[-2], FunctionCallItem) and isinstance(seen[-1], FunctionOutputItem)
    assert (seen[-1].output, seen[-1].is_error) == ("12:30", False)
    kinds = [type(i).__name__ for i in items(result)]
    assert kinds == ["ChatMessage", "FunctionCallItem", "FunctionOutputItem", "ChatMessage"]
    assert items(result)[-1].content == "It is half past twelve."
    executed = result.of(ev.FunctionToolsExecutedEvent)
    assert [c.name for c in executed[0].function_calls] == ["get_time"]
    metrics = result.of(ev.MetricsCollectedEvent)[0].metrics
    assert metrics.tool_steps == 1 and [(t.name, t.outcome) for t in metrics.tool_calls] == [("get_time", "ok")]


@pytest.mark.parametrize(
    ("call", "answer", "outcome"),
    [
        (
            ("set_light", '{"room": "attic", "level": 50}'),
            "invalid arguments at room: 'attic' is not one of",
            "bad_arguments",
        ),
        (("set_light", '{"room": "hall"'), "the arguments are not valid JSON", "bad_arguments"),
        (
            ("set_light", '{"room": "hall", "level": "high"}'),
            "invalid arguments at level: 'high' is not of type",
            "bad_arguments",
        ),
        (("open_door", "{}"), "unknown tool 'open_door'; the tools are: get_time, set_light", "unknown_tool"),
    ],
)
def test_a_bad_call_goes_back_to_the_model_which_may_correct_it(
    call: tuple[str, str], answer: str, outcome: str
) -> None:
    llm = ToolScriptLLM([[call], [("set_light", '{"room": "hall", "level": 40}')], "The hall is at forty."])
    result = run_with(llm, Agent(tools=[get_time, set_light]))
    first = llm.requests[1][0].items[-1]
    assert isinstance(first, FunctionOutputItem) and first.is_error and answer in first.output
    second = llm.requests[2][0].items[-1]
    assert isinstance(second, FunctionOutputItem) and second.output == "Room.HALL at 40 (warm)" and not second.is_error
    metrics = result.of(ev.MetricsCollectedEvent)[0].metrics
    assert [t.outcome for t in metrics.tool_calls] == [outcome, "ok"] and metrics.tool_steps == 2


def test_a_tool_error_is_told_to_the_model_and_any_other_failure_is_an_internal_error(caplog) -> None:  # type: ignore[no-untyped-def]
    @function_tool
    async def lock() -> str:
        """Lock the door."""
        raise ToolError("the door is open: close it first")

    @function_tool
    async def unlock() -> str:
        """Unlock the door."""
        raise KeyError("secret detail")

    llm = ToolScriptLLM([[("lock", "{}"), ("unlock", "{}")], "Close the door first."])
    with caplog.at_level(logging.ERROR):
        run_with(llm, Agent(tools=[lock, unlock]))
    outputs = [i for i in llm.requests[1][0].items if isinstance(i, FunctionOutputItem)]
    assert [(o.name, o.output, o.is_error) for o in outputs] == [
        ("lock", "the door is open: close it first", True),
        ("unlock", "internal error", True),  # the model is not shown the exception
    ]
    assert any("secret detail" in (r.exc_text or "") for r in caplog.records)  # the log has the traceback


def test_a_tool_past_its_timeout_is_answered_with_the_timeout() -> None:
    @function_tool(timeout=0.2)
    async def slow() -> str:
        """Takes too long."""
        await asyncio.sleep(30)
        return "never"

    llm = ToolScriptLLM([[("slow", "{}")], "It took too long."])
    run_with(llm, Agent(tools=[slow]))
    output = llm.requests[1][0].items[-1]
    assert isinstance(output, FunctionOutputItem) and output.output == "slow did not finish within 0.2 s"


def test_calls_of_one_step_run_at_once() -> None:
    both = asyncio.Event()
    started: list[str] = []

    @function_tool
    async def first() -> str:
        """One."""
        started.append("first")
        await asyncio.wait_for(both.wait(), 2)  # only returns if the second one started meanwhile
        return "one"

    @function_tool
    async def second() -> str:
        """Two."""
        started.append("second")
        both.set()
        return "two"

    llm = ToolScriptLLM([[("first", "{}"), ("second", "{}")], "One and two."])
    run_with(llm, Agent(tools=[first, second]))
    outputs = [i.output for i in llm.requests[1][0].items if isinstance(i, FunctionOutputItem)]
    assert outputs == ["one", "two"] and sorted(started) == ["first", "second"]


def test_past_max_steps_the_reply_says_it_could_not_finish_and_the_event_says_why() -> None:
    llm = ToolScriptLLM([[("set_light", f'{{"room": "hall", "level": {level}}}')] for level in range(10)])
    result = run_with(llm, Agent(tools=[set_light]), max_fnc_steps=3)
    assert len(llm.requests) == 4  # three rounds of calls, then the fourth asks again: the chain stops
    assert [e.max_steps for e in result.of(ev.FunctionChainTooLongEvent)] == [3]
    assert items(result)[-1].content == COULD_NOT_FINISH  # heard, never silence


def test_a_call_the_model_repeats_is_not_run_again_and_it_is_asked_for_words_without_tools() -> None:
    """A small model may ask again and again for the answer it has (seen with the default model on get_time)."""
    llm = ToolScriptLLM([[("get_time", "{}")], [("get_time", " { } ")], "It is half past twelve."])
    result = run_with(llm, Agent(tools=[get_time]))
    executed = [c.name for e in result.of(ev.FunctionToolsExecutedEvent) for c in e.function_calls]
    assert executed == ["get_time"]  # once
    assert [len(tools) for _, tools in llm.requests] == [1, 1, 0]  # the third request offers no tools
    assert items(result)[-1].content == "It is half past twelve."
    assert not result.of(ev.FunctionChainTooLongEvent)


def test_the_run_context_gives_the_values_the_session_and_a_filler() -> None:
    seen: list[Any] = []

    @function_tool
    async def find_keys(ctx: RunContext, place: str) -> str:
        """Look for the keys."""
        ctx.say("One moment.")
        seen.append((ctx.values, ctx.userdata, ctx.speech_handle.id, ctx.call_id))
        return "on the hook"

    assert "ctx" not in find_keys.parameters["properties"]
    llm = ToolScriptLLM([[("find_keys", '{"place": "hall"}')], "They are on the hook."])
    result = run_with(llm, Agent(tools=[find_keys]))
    assert seen == [({"place": "hall"}, None, "speech_1", "call_0")]
    assert items(result)[-1].content.split() == ["One", "moment.", "They", "are", "on", "the", "hook."]


def test_a_tool_defined_as_a_method_is_bound_to_its_agent() -> None:
    class Kitchen(Agent):
        def __init__(self) -> None:
            self.timers: list[int] = []
            super().__init__("You run the kitchen.")

        @function_tool
        async def start_timer(self, minutes: int) -> str:
            """Start a kitchen timer."""
            self.timers.append(minutes)
            return f"timer set for {minutes} minutes"

    kitchen = Kitchen()
    assert [t.name for t in kitchen.tools] == ["start_timer"]
    llm = ToolScriptLLM([[("start_timer", '{"minutes": 5}')], "Five minutes."])
    run_with(llm, kitchen)
    assert kitchen.timers == [5]


def test_every_call_is_answered_even_when_the_user_cuts_the_reply() -> None:
    release = asyncio.Event()

    @function_tool
    async def wait_forever() -> str:
        """Interruptible: cut with the reply."""
        await asyncio.Event().wait()
        return "never"

    @function_tool(interruptible=False)
    async def save_note() -> str:
        """Not interruptible: runs to its end."""
        await release.wait()
        return "saved"

    llm = ToolScriptLLM([[("wait_forever", "{}"), ("save_note", "{}")], "Never said."])

    async def script(session: AgentSession) -> None:
        for _ in range(200):
            if any(isinstance(i, FunctionCallItem) for i in session.chat_ctx.items):
                break
            await asyncio.sleep(0.02)
        session.interrupt()
        await asyncio.sleep(0.1)
        release.set()  # the uninterruptible call finishes after the cut
        await asyncio.sleep(0.1)

    stages = engines()
    stages["llm"] = llm
    result = converse(stages, QUESTION, script, agent=Agent(tools=[wait_forever, save_note]))
    stages["vad"].close()
    outputs = {i.name: i for i in items(result) if isinstance(i, FunctionOutputItem)}
    assert outputs["wait_forever"].output == CANCELLED and outputs["wait_forever"].is_error
    assert outputs["save_note"].output == "saved" and not outputs["save_note"].is_error
    assert len(llm.requests) == 1  # the cut reply asked nothing more


def test_the_openai_client_calls_a_tool_through_the_loopback_server() -> None:
    from appliance.providers.openai import OpenAILLM
    from appliance.rig.loopback.openai import OpenAIServer
    from appliance.rig.loopback.server import serve_in_thread

    server = OpenAIServer(api_key="k")
    server.tool_call = ("get_time", "{}")
    server.reply = "It is half past twelve."
    with serve_in_thread(server) as thread:
        llm = OpenAILLM(base_url=f"{thread.url}/v1", api_key="k", model="loopback-1")
        result = run_with(llm, Agent(tools=[get_time]))
    kinds = [type(i).__name__ for i in items(result)]
    assert kinds == ["ChatMessage", "FunctionCallItem", "FunctionOutputItem", "ChatMessage"]
    assert items(result)[-1].content == "It is half past twelve."
    sent = server.last_request
    assert sent is not None and sent["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_loopback_0",
        "content": "12:30",
    }
    assert json.dumps(sent["tools"][0]["function"]["name"]) == '"get_time"'
