"""The LLM stage: a chat context in, a stream of text chunks out."""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass, field

_ids = itertools.count(1)


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass
class ChatMessage:
    """One turn of the conversation."""

    role: Role
    content: str
    id: str = field(default_factory=lambda: f"item_{next(_ids)}")
    interrupted: bool = False
    """The assistant was cut off; ``content`` holds only what was heard."""


@dataclass
class ChatContext:
    """The conversation the model sees: instructions first, then the turns."""

    items: list[ChatMessage] = field(default_factory=list)

    def add_message(self, role: Role | str, content: str, *, interrupted: bool = False) -> ChatMessage:
        msg = ChatMessage(Role(role), content, interrupted=interrupted)
        self.items.append(msg)
        return msg

    def copy(self) -> ChatContext:
        return ChatContext([ChatMessage(m.role, m.content, m.id, m.interrupted) for m in self.items])

    def truncate(self, max_items: int) -> None:
        """Keep the system messages and the last ``max_items`` other turns."""
        system = [m for m in self.items if m.role is Role.SYSTEM]
        rest = [m for m in self.items if m.role is not Role.SYSTEM]
        self.items = system + rest[-max_items:] if max_items > 0 else system

    def to_openai(self) -> list[dict[str, str]]:
        return [{"role": m.role.value, "content": m.content} for m in self.items]


@dataclass(frozen=True)
class ChatChunk:
    """A piece of the reply as it is generated."""

    delta: str
    request_id: str


@dataclass(frozen=True)
class LLMMetrics:
    """Cost of one request."""

    request_id: str
    ttft: float
    """Seconds from the request to the first text (-1 if none came)."""
    duration: float
    """Seconds from the request to the last token."""
    prompt_tokens: int
    completion_tokens: int
    cancelled: bool

    @property
    def tokens_per_second(self) -> float:
        gen_time = self.duration - max(self.ttft, 0.0)
        return self.completion_tokens / gen_time if gen_time > 0 and self.completion_tokens > 1 else 0.0
