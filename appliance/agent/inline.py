"""A task awaited inside a tool: ``value = await AskName()`` hands the conversation to the task until one of its
tools calls ``complete(value)``; then the calling agent is back and the tool goes on with the value.

The reply that made the call ends at that step (its answer is still to come), so the speech queue is free
for the task's own turns. The call is answered at once with a placeholder, so the conversation stays valid
for every model API while the task talks with the user; the tool's real answer replaces it when the tool
returns, and the calling agent replies to it.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from appliance.agent.agent import AgentTask

if TYPE_CHECKING:
    from appliance.agent.tools import RunContext

T = TypeVar("T")

CURRENT_CALL: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("appliance_tool_call", default=None)
"""The tool call being run in this task (set by the tool runner): what an awaited task hands over from."""


class InlineTask(AgentTask, Generic[T]):
    """An ``AgentTask`` that ends with a value: await it inside a tool; ``complete(result)`` (or an exception)
    from one of its tools or hooks ends it. Its turns go into the session's conversation, which the calling
    agent goes on with."""

    _result: asyncio.Future[T] | None = None
    timeout: float = 300.0
    """Seconds the task may take before the awaiting tool gets a ``ToolError`` and the caller is back."""

    def complete(self, result: T | BaseException) -> None:
        """End the task: the awaiting tool gets ``result`` (an exception is raised in it). Later calls do nothing."""
        future = self._result
        if future is None:
            raise RuntimeError(f"{self.name} is not running: await it inside a tool first")
        if future.done():
            return
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)

    @property
    def done(self) -> bool:
        return self._result is not None and self._result.done()

    def __await__(self) -> Generator[Any, None, T]:
        return self._run().__await__()

    async def _run(self) -> T:
        call = CURRENT_CALL.get()
        if call is None:
            raise RuntimeError(f"{self.name} is awaited outside a tool: an InlineTask runs inside a tool call")
        if self._result is not None:
            raise RuntimeError(f"{self.name} was already awaited: make a new task for each run")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._result = future
        await call.session.run_inline(self, call, future)
        return future.result()
