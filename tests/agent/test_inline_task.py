"""An InlineTask awaited inside a tool, through the real session with a scripted model that asks for calls.

All audio is SYNTHETIC (tests/agent/scripted.py), fed in real time: the task's question is answered in the
follow-up window.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from appliance.agent import Agent, InlineTask, RunContext, function_tool
from appliance.agent.toolcalls import WAITING
from appliance.llm.base import FunctionOutputItem, Role
from appliance.llm.chat import AgentHandoffItem
from tests.agent.scripted import engines, quiet, speech
from tests.agent.test_scripted_session import QUESTION, converse
from tests.agent.test_tasks import system_of
from tests.agent.test_tools import ToolScriptLLM

ANSWERED = [*QUESTION, *quiet(1.5), *speech(1.0, seed=3), *quiet(3.5)]
"""A question, then the user's answer to the task's question."""


class AskName(InlineTask[str]):
    def __init__(self, log: list[str]) -> None:
        super().__init__("Ask the user for the name of the booking.")
        self.log = log

    async def on_enter(self) -> None:
        self.log.append("task: enter")

    async def on_exit(self) -> None:
        self.log.append("task: exit")

    @function_tool
    async def give_name(self, name: str) -> str:
        """The name the user gave.

        Args:
            name: the name
        """
        self.complete(name)
        return f"name {name} taken"


class Host(Agent):
    def __init__(self, timeout: float | None = None) -> None:
        super().__init__("You book tables.")
        self.log: list[str] = []
        self.timeout = timeout

    @function_tool
    async def book_table(self, ctx: RunContext) -> str:
        """Book a table (asks the user for the name)."""
        task = AskName(self.log)
        if self.timeout is not None:
            task.timeout = self.timeout
        name = await task
        self.log.append(f"tool got {name}")
        return f"table booked for {name}"


def run(llm: Any, agent: Agent, audio: Any) -> Any:
    stages = engines()
    stages["llm"] = llm
    try:
        return converse(stages, np.array(audio, dtype=np.int16), agent=agent, realtime=True)
    finally:
        stages["vad"].close()


def outputs(session: Any) -> list[tuple[str, str]]:
    return [(i.name, i.output) for i in session.chat_ctx.items if isinstance(i, FunctionOutputItem)]


def test_a_tool_awaits_a_task_that_asks_the_user_then_the_caller_answers_with_its_result() -> None:
    llm = ToolScriptLLM(
        [
            [("book_table", "{}")],  # the host's reply: the tool awaits the task, and the reply ends there
            "What name is the booking under?",  # the task speaks first
            [("give_name", '{"name": "Ada"}')],  # the user answered: the task completes
            "Thank you.",
            "Your table is booked for Ada.",  # the host, back, replies to the tool's answer
        ]
    )
    host = Host()
    result = run(llm, host, ANSWERED)
    session = result.session
    assert host.log == ["task: enter", "task: exit", "tool got Ada"]
    handoffs = [(i.old_agent, i.new_agent) for i in session.chat_ctx.items if isinstance(i, AgentHandoffItem)]
    assert handoffs == [("Host", "AskName"), ("AskName", "Host")]
    # while the task ran the call had its placeholder answer (every model API needs one); then the real one
    task_request = llm.requests[1][0]
    assert system_of(task_request) == ["Ask the user for the name of the booking."]
    assert [(i.name, i.output) for i in task_request.items if isinstance(i, FunctionOutputItem)] == [
        ("book_table", WAITING.format(task="AskName"))
    ]
    assert outputs(session) == [("book_table", "table booked for Ada"), ("give_name", "name Ada taken")]
    assert system_of(llm.requests[4][0]) == ["You book tables."]
    said = [m.content for m in session.chat_ctx.messages() if m.role is Role.ASSISTANT]
    assert said[-1] == "Your table is booked for Ada."
    assert "What name is the booking under?" in said


def test_a_task_that_gets_no_answer_gives_the_tool_an_error_and_the_caller_is_back() -> None:
    llm = ToolScriptLLM([[("book_table", "{}")], "What name is the booking under?", "I could not book it."])
    host = Host(timeout=1.0)
    result = run(llm, host, [*QUESTION, *quiet(4.0)])  # the user never answers
    session = result.session
    assert host.log == ["task: enter", "task: exit"]  # the tool did not get a name
    (book,) = [o for n, o in outputs(session) if n == "book_table"]
    assert book == "AskName got no answer within 1 s"
    assert session.current_agent is host
    assert [m.content for m in session.chat_ctx.messages() if m.role is Role.ASSISTANT][-1] == "I could not book it."


def test_an_inline_task_awaited_outside_a_tool_says_so() -> None:
    with pytest.raises(RuntimeError, match="awaited outside a tool"):
        asyncio.run(_await(AskName([])))


async def _await(task: AskName) -> str:
    return await task
