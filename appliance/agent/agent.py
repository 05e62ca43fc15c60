"""Who the assistant is: its instructions and its tools, held by the session."""

from __future__ import annotations

from collections.abc import Sequence

from appliance.agent.tools import FunctionTool, find_tools
from appliance.llm.base import ChatContext

DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant running on a small device. "
    "Answer in one or two short, plain sentences that sound natural when spoken."
)


class Agent:
    """The assistant's instructions, its tools (``tools=`` and the ``@function_tool`` methods of a subclass),
    and the conversation it starts from (a restored one, say)."""

    def __init__(
        self,
        instructions: str = DEFAULT_INSTRUCTIONS,
        *,
        chat_ctx: ChatContext | None = None,
        tools: Sequence[FunctionTool] = (),
    ) -> None:
        self.instructions = instructions
        self.chat_ctx = chat_ctx or ChatContext()
        self.tools = [*tools, *find_tools(self)]
        names = [tool.name for tool in self.tools]
        if len(set(names)) != len(names):
            raise ValueError(f"two tools share a name: {sorted(n for n in names if names.count(n) > 1)[0]!r}")

    def __repr__(self) -> str:
        return f"Agent(instructions={self.instructions[:40]!r}...)"
