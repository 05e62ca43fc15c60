"""What the llama.cpp engine reads in a model's words: the template's tool format and the JSON schema a call
must meet, where a call begins in the text (in the template's tag, or in the dress a small model gives it),
and how much of a cached prompt a new one can keep."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appliance.llm.base import ToolSpec


@dataclass(frozen=True)
class ToolFormat:
    """How a chat template writes a tool call: the tags around the call's JSON ``{"name", "arguments"}``."""

    opener: str
    closer: str

    @classmethod
    def for_template(cls, template: str) -> ToolFormat | None:
        """The format the template declares, or None if it has no tools (Qwen2.5, Hermes: ``<tool_call>``)."""
        if "tools" in template and "<tool_call>" in template:
            return cls("<tool_call>", "</tool_call>")
        return None

    def call_schema(self, tools: Sequence[ToolSpec]) -> dict[str, Any]:
        """A JSON schema that only the offered tools, with valid arguments, satisfy."""
        options = [
            {
                "type": "object",
                "properties": {"name": {"const": t.name}, "arguments": closed_schema(t.parameters)},
                "required": ["name", "arguments"],
                "additionalProperties": False,
            }
            for t in tools
        ]
        return options[0] if len(options) == 1 else {"oneOf": options}


def closed_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An object schema without room for made-up arguments (a small model invents them otherwise)."""
    if schema.get("type") == "object" and "additionalProperties" not in schema:
        return {**schema, "additionalProperties": False}
    return schema


def as_object(arguments: str) -> Any:
    try:
        return json.loads(arguments)
    except ValueError:
        return {}


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def best_gap(cached: list[int], tokens: list[int], start: int) -> tuple[int, int]:
    """The cut ``gap`` after ``start`` such that ``cached[start + gap:]`` begins with the longest run of
    ``tokens[start:]``: (gap, length of that run)."""
    best, best_len = 0, 0
    if start >= len(tokens):
        return 0, 0
    first = tokens[start]
    for gap in range(1, len(cached) - start):
        if cached[start + gap] != first:
            continue
        length = common_prefix(cached[start + gap :], tokens[start:])
        if length > best_len:
            best, best_len = gap, length
            if start + gap + length == len(cached):
                break  # runs to the end of the cache: nothing longer exists
    return best, best_len


CALL_STARTS = ("{", "```", "<tool_call>")
"""How small models begin a call instead of the template's tag: bare JSON, or JSON in a code block. A spoken
answer never starts so."""


def starts_call(text: str) -> bool:
    return text.lstrip().startswith(CALL_STARTS)


def may_start_call(text: str) -> bool:
    """Too little of the reply to tell a call from words yet."""
    head = text.lstrip()
    return not head or any(start.startswith(head) for start in CALL_STARTS)


BARE_CALL = '{"name"'
"""A call written into the middle of a reply without the template's tag."""


def call_mark(text: str, opener: str) -> int | None:
    """Where a call begins in ``text`` (the template's tag, or a bare call's JSON), if it does."""
    found = [i for i in (text.find(opener), text.find(BARE_CALL)) if i >= 0]
    return min(found) if found else None


def partial_suffix(text: str, tag: str) -> int:
    """How many characters at the end of ``text`` could be the start of ``tag`` (held back until known)."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0
