"""Running the calls the LLM asked for in one step: concurrently, each bounded by its tool's timeout, and each
answered in the conversation, whatever happens (a bad argument, an unknown name, a failure, a timeout, the
user cutting the reply). The model reads every answer and may correct itself on the next step."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from appliance.agent.agent import Agent
from appliance.agent.inline import CURRENT_CALL
from appliance.agent.tools import FunctionTool, RunContext, ToolError
from appliance.llm.base import ChatContext, ChatItem, FunctionCall, FunctionCallItem, FunctionOutputItem

logger = logging.getLogger(__name__)

CANCELLED = "cancelled: the user interrupted the reply before it finished"
WAITING = "under way: {task} is asking the user; its answer follows"
"""The placeholder answer of a call that awaits a task (replaced by the tool's answer when it returns)."""
MAX_OUTPUT = 4000
"""Characters of a tool's output the model is given (the rest is cut, and it is told)."""


@dataclass(frozen=True)
class ToolCallMetrics:
    name: str
    seconds: float
    outcome: str
    """``ok``, ``tool_error``, ``bad_arguments``, ``unknown_tool``, ``timeout``, ``error``, ``cancelled``."""


class ToolRunner:
    """The tools of the current agent, and where each call and its answer go (the conversation)."""

    def __init__(
        self,
        tools: Sequence[FunctionTool],
        add_item: Callable[[ChatItem], None],
        context: Callable[[FunctionCall, dict[str, Any], Callable[[str], None]], RunContext | None],
        background: set[asyncio.Task[Any]],
        late_answer: Callable[[FunctionOutputItem], None] = lambda output: None,
    ) -> None:
        """``late_answer``: the answer of a call that awaited a task, when the tool returns (it replaces the
        call's placeholder answer)."""
        self.tools = {tool.name: tool for tool in tools}
        self._add_item = add_item
        self._context = context
        self.metrics: list[ToolCallMetrics] = []
        self.background = background
        """Uninterruptible calls still running after their reply was cut (each answers when it ends)."""
        self.handoff_to: Agent | None = None
        """An agent a tool returned: the conversation goes to it after this step."""
        self._late_answer = late_answer
        self.detached = False
        """A call of this step awaits a task with the user: the reply ends after the step."""

    async def run(
        self, calls: Sequence[FunctionCall], ctx: ChatContext, *, speak: Callable[[str], None]
    ) -> list[FunctionOutputItem]:
        """Run ``calls`` at once; each call and then its output are added to ``ctx`` and the conversation.
        ``speak``: what ``RunContext.say`` does (a filler while a tool works)."""
        for call in calls:
            item = FunctionCallItem(call.call_id, call.name, call.arguments)
            ctx.items.append(item)
            self._add_item(item)
        tasks = [asyncio.create_task(self._answer(call, speak), name=f"tool-{call.name}") for call in calls]
        outputs: list[FunctionOutputItem] = []
        try:
            await asyncio.wait(tasks)
        finally:  # also when the reply is cut: every call gets its answer
            for call, task in zip(calls, tasks, strict=True):
                if task.done() and not task.cancelled():
                    output = task.result()
                elif self._interruptible(call):
                    task.cancel()
                    output = FunctionOutputItem(call.call_id, call.name, CANCELLED, is_error=True)
                    self.metrics.append(ToolCallMetrics(call.name, 0.0, "cancelled"))
                else:
                    self._finish_later(call, task)
                    continue
                ctx.items.append(output)
                self._add_item(output)
                outputs.append(output)
        return outputs

    def _interruptible(self, call: FunctionCall) -> bool:
        tool = self.tools.get(call.name)
        return tool is None or tool.interruptible

    def _finish_later(self, call: FunctionCall, task: asyncio.Task[FunctionOutputItem]) -> None:
        async def answer() -> None:
            output = await task
            self._add_item(output)

        waiter = asyncio.create_task(answer(), name=f"tool-{call.name}-after-cut")
        self.background.add(waiter)
        waiter.add_done_callback(self.background.discard)

    async def _answer(self, call: FunctionCall, speak: Callable[[str], None]) -> FunctionOutputItem:
        """The call's output item; never raises (except when cancelled)."""
        start = time.perf_counter()
        output, outcome = await self._execute(call, speak)
        self.metrics.append(ToolCallMetrics(call.name, time.perf_counter() - start, outcome))
        logger.info(
            "tool call", extra={"tool": call.name, "outcome": outcome, "seconds": round(time.perf_counter() - start, 3)}
        )
        return FunctionOutputItem(call.call_id, call.name, output, is_error=outcome not in ("ok", "waiting"))

    async def _execute(self, call: FunctionCall, speak: Callable[[str], None]) -> tuple[str, str]:
        tool = self.tools.get(call.name)
        if tool is None:
            known = ", ".join(sorted(self.tools)) or "none"
            return f"unknown tool {call.name!r}; the tools are: {known}", "unknown_tool"
        try:
            values = tool.check(json.loads(call.arguments or "{}"))
        except json.JSONDecodeError as exc:
            return (
                f"the arguments are not valid JSON ({exc.msg} at character {exc.pos}); send a JSON object",
                "bad_arguments",
            )
        except ToolError as exc:
            return str(exc), "bad_arguments"
        detached: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        context = self._context(call, values, speak)
        if context is not None:
            context.detach = lambda task: None if detached.done() else detached.set_result(task)
        token = CURRENT_CALL.set(context)
        try:
            running = asyncio.ensure_future(tool.call(context, values))  # copies the context: the call sees it
        finally:
            CURRENT_CALL.reset(token)
        try:
            await asyncio.wait({running, detached}, timeout=tool.timeout, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            running.cancel()
            raise
        if not running.done():
            if detached.done():  # waits on the user through a task: answered when it returns
                self.detached = True
                self._answer_later(call, running)
                return WAITING.format(task=detached.result()), "waiting"
            running.cancel()
            return f"{call.name} did not finish within {tool.timeout:g} s", "timeout"
        return self._outcome(call, running)

    def _answer_later(self, call: FunctionCall, running: asyncio.Future[Any]) -> None:
        async def answer() -> None:
            try:
                await asyncio.wait({running})
            except asyncio.CancelledError:
                running.cancel()
                raise
            text, outcome = self._outcome(call, running)
            self.metrics.append(ToolCallMetrics(call.name, 0.0, outcome))
            self._late_answer(FunctionOutputItem(call.call_id, call.name, text, is_error=outcome != "ok"))

        waiter = asyncio.create_task(answer(), name=f"tool-{call.name}-after-task")
        self.background.add(waiter)
        waiter.add_done_callback(self.background.discard)

    def _outcome(self, call: FunctionCall, running: asyncio.Future[Any]) -> tuple[str, str]:
        """What a finished call answers, and how it went."""
        try:
            result = running.result()
        except ToolError as exc:
            return str(exc), "tool_error"
        except Exception:
            logger.exception("tool failed", extra={"tool": call.name})
            return "internal error", "error"
        if isinstance(result, Agent):
            self.handoff_to = result
            return f"handed over to {result.name}", "ok"
        return _text(result), "ok"


def _text(result: Any) -> str:
    """What the model reads: a string as it is, anything else as JSON (None: an empty answer)."""
    if result is None:
        text = "done"
    elif isinstance(result, str):
        text = result
    else:
        try:
            text = json.dumps(result, default=str)
        except (TypeError, ValueError):
            text = str(result)
    if len(text) > MAX_OUTPUT:
        text = text[:MAX_OUTPUT] + f" [cut: {len(text) - MAX_OUTPUT} more characters]"
    return text
