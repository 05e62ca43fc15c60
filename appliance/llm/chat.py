"""The conversation the model sees: typed items (messages, function calls and their outputs), each with an id
and the time it was made, in the order they happened."""

from __future__ import annotations

import enum
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal


def _item_id() -> str:
    return f"item_{uuid.uuid4().hex[:12]}"


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass
class ChatMessage:
    """One turn of the conversation."""

    role: Role
    content: str
    id: str = field(default_factory=_item_id)
    interrupted: bool = False
    """The assistant was cut off; ``content`` holds only what was heard."""
    created_at: float = field(default_factory=time.time)
    type: Literal["message"] = "message"


@dataclass
class FunctionCallItem:
    """The model asked for a function to be called."""

    call_id: str
    name: str
    arguments: str
    """The arguments as the model wrote them (JSON text, maybe not valid)."""
    id: str = field(default_factory=_item_id)
    created_at: float = field(default_factory=time.time)
    type: Literal["function_call"] = "function_call"


@dataclass
class FunctionOutputItem:
    """What a call returned (or why it failed): what the model reads next."""

    call_id: str
    name: str
    output: str
    is_error: bool = False
    id: str = field(default_factory=_item_id)
    created_at: float = field(default_factory=time.time)
    type: Literal["function_call_output"] = "function_call_output"


@dataclass
class AgentHandoffItem:
    """The conversation was handed from one agent to another."""

    old_agent: str | None
    new_agent: str
    id: str = field(default_factory=_item_id)
    created_at: float = field(default_factory=time.time)
    type: Literal["agent_handoff"] = "agent_handoff"


ChatItem = ChatMessage | FunctionCallItem | FunctionOutputItem | AgentHandoffItem


CHARS_PER_TOKEN = 3.5
"""English text in the tokenizers of today's small chat models (a slight overestimate keeps a budget safe)."""
ITEM_TOKENS = 5
"""What a chat template adds around each item (role tags, separators)."""


def estimated_tokens(item: ChatItem) -> int:
    """About how many tokens ``item`` takes in a prompt (no tokenizer needed: budgets need no precision)."""
    if isinstance(item, ChatMessage):
        text = item.content
    elif isinstance(item, FunctionCallItem):
        text = item.name + item.arguments
    elif isinstance(item, FunctionOutputItem):
        text = item.output
    else:
        text = ""
    return ITEM_TOKENS + math.ceil(len(text) / CHARS_PER_TOKEN)


def _within(items: list[ChatItem], budget: int) -> list[ChatItem]:
    """The newest ``items`` within ``budget`` tokens, cut at a block boundary (see ``ChatContext.truncate``)."""
    costs = [estimated_tokens(i) for i in items]
    excess = sum(costs) - max(budget, 0)
    if excess <= 0:
        return items
    block = max(budget // 4, 1)
    target = math.ceil(excess / block) * block
    dropped = 0
    for n, cost in enumerate(costs):
        if dropped >= target:
            return items[n:]
        dropped += cost
    return []


_KINDS: dict[str, Callable[..., ChatItem]] = {
    "message": ChatMessage,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionOutputItem,
    "agent_handoff": AgentHandoffItem,
}


def item_to_dict(item: ChatItem) -> dict[str, Any]:
    doc = dict(vars(item))
    if isinstance(item, ChatMessage):
        doc["role"] = item.role.value
    return doc


def item_from_dict(doc: dict[str, Any]) -> ChatItem:
    """The inverse of ``item_to_dict``; a ``ValueError``/``KeyError``/``TypeError`` for anything else."""
    fields = dict(doc)
    kind = _KINDS[str(fields.pop("type", "message"))]
    if kind is ChatMessage:
        fields["role"] = Role(fields["role"])
    return kind(**fields)


def snapshot(item: ChatItem) -> ChatItem:
    """A copy of ``item`` that can be handed out (in an event) without its holder seeing what is done to it."""
    return item_from_dict(item_to_dict(item))


@dataclass
class ChatContext:
    """Instructions first, then the turns and the function calls between them, in time order."""

    items: list[ChatItem] = field(default_factory=list)

    def add_message(self, role: Role | str, content: str, *, interrupted: bool = False) -> ChatMessage:
        msg = ChatMessage(Role(role), content, interrupted=interrupted)
        self.items.append(msg)
        return msg

    def add_function_call(self, call_id: str, name: str, arguments: str) -> FunctionCallItem:
        item = FunctionCallItem(call_id, name, arguments)
        self.items.append(item)
        return item

    def add_function_output(
        self, call_id: str, name: str, output: str, *, is_error: bool = False
    ) -> FunctionOutputItem:
        item = FunctionOutputItem(call_id, name, output, is_error)
        self.items.append(item)
        return item

    def messages(self) -> list[ChatMessage]:
        return [item for item in self.items if isinstance(item, ChatMessage)]

    def copy(self, *, exclude_function_calls: bool = False, exclude_instructions: bool = False) -> ChatContext:
        """A copy whose items can be changed without touching these (same ids)."""
        out = []
        for item in self.items:
            if exclude_function_calls and isinstance(item, FunctionCallItem | FunctionOutputItem):
                continue
            if exclude_instructions and isinstance(item, ChatMessage) and item.role is Role.SYSTEM:
                continue
            out.append(snapshot(item))
        return ChatContext(out)

    def truncate(self, max_items: int, *, max_tokens: int | None = None) -> None:
        """Keep the instructions and the last ``max_items`` other items, within about ``max_tokens`` (estimated)
        if given; a function output whose call was cut goes too (the model never sees an answer without its
        question).

        Over the token budget, the oldest items go in blocks of a quarter of the budget, counted from the
        start of the conversation: the cut stays where it is for several turns, so a model's cached prompt
        (llama.cpp, a provider's prompt cache) stays valid between the cuts."""
        system = [i for i in self.items if isinstance(i, ChatMessage) and i.role is Role.SYSTEM]
        rest = [i for i in self.items if not (isinstance(i, ChatMessage) and i.role is Role.SYSTEM)]
        kept = rest[-max_items:] if max_items > 0 else []
        if max_tokens is not None:
            kept = _within(kept, max_tokens - sum(estimated_tokens(i) for i in system))
        calls = {i.call_id for i in kept if isinstance(i, FunctionCallItem)}
        self.items = system + [i for i in kept if not isinstance(i, FunctionOutputItem) or i.call_id in calls]

    def estimated_tokens(self) -> int:
        return sum(estimated_tokens(item) for item in self.items)

    def merge(self, other: ChatContext) -> ChatContext:
        """Add ``other``'s items that this one does not have (by id), keeping the time order."""
        known = {item.id for item in self.items}
        self.items.extend(item for item in other.items if item.id not in known)
        self.items.sort(key=lambda item: item.created_at)  # stable: items made at the same time keep their order
        return self

    def to_dict(self) -> dict[str, Any]:
        return {"items": [item_to_dict(item) for item in self.items]}

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ChatContext:
        return cls([item_from_dict(item) for item in doc["items"]])

    def to_openai(self, *, native_tools: bool = True) -> list[dict[str, Any]]:
        """OpenAI's chat messages. Calls made in a row are one assistant message with ``tool_calls``, each
        output a ``tool`` message. ``native_tools=False`` (a model that has no tool format): each call and its
        output become one line of system text, so the model still knows what was done and found."""
        out: list[dict[str, Any]] = []
        for item in self.items:
            if isinstance(item, ChatMessage):
                out.append({"role": item.role.value, "content": item.content})
            elif isinstance(item, AgentHandoffItem):
                continue  # the new agent's instructions say who is speaking now
            elif not native_tools:
                if isinstance(item, FunctionOutputItem):
                    what = "failed" if item.is_error else "returned"
                    out.append({"role": "system", "content": f"The function {item.name} {what}: {item.output}"})
            elif isinstance(item, FunctionCallItem):
                call = {
                    "id": item.call_id,
                    "type": "function",
                    "function": {"name": item.name, "arguments": item.arguments},
                }
                last = out[-1] if out else None
                if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                    last["tool_calls"].append(call)
                else:
                    out.append({"role": "assistant", "content": None, "tool_calls": [call]})
            else:
                out.append({"role": "tool", "tool_call_id": item.call_id, "content": item.output})
        return out
