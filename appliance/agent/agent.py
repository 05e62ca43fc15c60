"""Who the assistant is: its instructions (tools and hooks come later), held by the session."""

from __future__ import annotations

from appliance.llm.base import ChatContext

DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant running on a small device. "
    "Answer in one or two short, plain sentences that sound natural when spoken."
)


class Agent:
    """The assistant's instructions, and the conversation it starts from (a restored one, say)."""

    def __init__(self, instructions: str = DEFAULT_INSTRUCTIONS, *, chat_ctx: ChatContext | None = None) -> None:
        self.instructions = instructions
        self.chat_ctx = chat_ctx or ChatContext()

    def __repr__(self) -> str:
        return f"Agent(instructions={self.instructions[:40]!r}...)"
