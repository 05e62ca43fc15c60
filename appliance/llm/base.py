"""The LLM stage: a chat context in, a stream of text chunks out."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from appliance.llm.chat import (
    ChatContext,
    ChatItem,
    ChatMessage,
    FunctionCallItem,
    FunctionOutputItem,
    Role,
)
from appliance.providers.attempt import FailedAttempt

__all__ = [
    "LLM",
    "ChatChunk",
    "ChatContext",
    "ChatItem",
    "ChatMessage",
    "FunctionCall",
    "FunctionCallItem",
    "FunctionOutputItem",
    "LLMCapabilities",
    "LLMMetrics",
    "LLMStream",
    "Role",
    "ToolChoice",
    "ToolSpec",
]


ToolChoice = Literal["auto", "required"]


@dataclass(frozen=True)
class ToolSpec:
    """A function the model may ask to call: a name, what it does, and its JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def to_openai(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


@dataclass(frozen=True)
class FunctionCall:
    """The model asks for ``name`` to be called with ``arguments`` (a JSON object, as text)."""

    call_id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatChunk:
    """A piece of the reply as it is generated."""

    delta: str
    request_id: str
    tool_calls: tuple[FunctionCall, ...] = ()
    """Complete calls the model asked for (each arrives once, in the chunk where it was completed)."""


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
    provider: str = ""
    """Which provider served the reply (set by a fallback adapter)."""
    failed_attempts: tuple[FailedAttempt, ...] = ()
    """The tries that failed before it (a fallback adapter's)."""
    cached_tokens: int = 0
    """Prompt tokens the engine did not compute again (llama.cpp's cache; a provider's prompt cache)."""

    @property
    def tokens_per_second(self) -> float:
        gen_time = self.duration - max(self.ttft, 0.0)
        return self.completion_tokens / gen_time if gen_time > 0 and self.completion_tokens > 1 else 0.0


@dataclass(frozen=True)
class LLMCapabilities:
    streaming: bool = True
    """Text comes token by token (else: the whole reply at once)."""
    tool_calling: bool = False
    """It can be offered functions to call."""


class LLMStream(abc.ABC):
    """One reply: ``async for chunk in stream``; ``aclose()`` stops generation at the engine."""

    request_id: str
    metrics: LLMMetrics | None
    """Filled in once the reply has ended (or was stopped)."""

    @property
    @abc.abstractmethod
    def text(self) -> str:
        """What has been generated so far."""

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        return self

    @abc.abstractmethod
    async def __anext__(self) -> ChatChunk:
        """The next piece; an ``APIError`` if the engine failed or went silent past its bound."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...


class LLM(abc.ABC):
    """A chat model: a conversation in, a streamed reply out."""

    capabilities: LLMCapabilities
    label: str = "llm"
    """Which engine or provider this is (for logs and metrics)."""

    @abc.abstractmethod
    def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto"
    ) -> LLMStream:
        """Start a reply to ``chat_ctx`` (copied: later changes to it do not reach the request). ``tools`` are
        offered only to an LLM whose capabilities say ``tool_calling``; others ignore them. ``tool_choice``:
        ``auto`` (the model decides), or ``required`` (the reply is a call to one of ``tools``)."""

    async def warm_up(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> None:
        """Prepare for a request that continues ``chat_ctx`` with the user's next message and offers ``tools``
        (a local model reads the prompt up to that message into its cache, a provider opens its connection);
        may do nothing."""
        return None

    async def prefill(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> None:
        """While the user speaks: read ``chat_ctx`` up to where their message will go, so the reply to it
        starts sooner. A local model fills its cache, and stops as soon as a request is waiting for it; a
        provider does nothing (nothing of the conversation leaves before the user's turn)."""
        return None

    async def aclose(self) -> None:
        """Close what the engine holds open on the event loop (a provider's connections), on that loop."""
        return None

    def close(self) -> None:
        """Release the engine."""
        return None
