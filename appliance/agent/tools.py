"""AI functions the LLM can call: ``@function_tool`` on a plain async function or method.

The JSON schema comes from the type hints and the docstring (its first paragraph is the description, an
``Args:`` section describes the parameters), or is given whole with ``raw_schema``. Arguments are checked
against the schema (``jsonschema``) before the call; a parameter annotated ``RunContext`` is not part of the
schema and gets the context of the call.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import re
import types
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jsonschema

from appliance.llm.base import ToolSpec

if TYPE_CHECKING:
    from appliance.agent.session import AgentSession
    from appliance.agent.speech import SpeechHandle

DEFAULT_TIMEOUT = 10.0
"""Seconds a tool may run before its call is answered with a timeout."""
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
"""What OpenAI accepts as a function name (and so what every model here is offered)."""


class ToolError(Exception):
    """Raised by a tool: its message goes to the LLM as the call's error, which the model may correct."""


@dataclass
class RunContext:
    """What a tool is given about its call (a parameter annotated ``RunContext`` receives it)."""

    session: AgentSession
    speech_handle: SpeechHandle
    """The reply the call belongs to."""
    call_id: str
    values: dict[str, Any]
    """The arguments, parsed and checked."""
    speak: Callable[[str], None] = dataclasses.field(repr=False, default=lambda text: None)
    detach: Callable[[str], None] = dataclasses.field(repr=False, default=lambda task: None)
    """Called with a task's name when the tool awaits an ``InlineTask``: the call waits on the user now, and
    its reply ends without it."""

    @property
    def userdata(self) -> Any:
        return self.session.userdata

    def say(self, text: str) -> None:
        """Speak while the tool works ("One moment."): it plays now, as part of the reply."""
        self.speak(text)


@dataclass(frozen=True)
class FunctionTool:
    name: str
    description: str
    parameters: dict[str, Any]
    fn: Callable[..., Awaitable[Any]]
    context_param: str | None
    """The parameter that receives the ``RunContext`` (None: the tool takes none)."""
    timeout: float = DEFAULT_TIMEOUT
    interruptible: bool = True
    """A reply cut by the user cancels the call; an uninterruptible one runs to its end (its answer is kept)."""
    enums: dict[str, type[enum.Enum]] = dataclasses.field(default_factory=dict)
    """Parameters annotated with an Enum: the JSON value is turned into its member before the call."""

    @property
    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.parameters)

    def check(self, arguments: Any) -> dict[str, Any]:
        """The arguments if they fit the schema; a ``ToolError`` naming what is wrong otherwise."""
        if not isinstance(arguments, dict):
            raise ToolError(f"the arguments must be a JSON object, not {type(arguments).__name__}")
        try:
            jsonschema.validate(arguments, self.parameters)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path)
            raise ToolError(f"invalid arguments{f' at {where}' if where else ''}: {exc.message}") from exc
        return arguments

    async def call(self, ctx: RunContext | None, arguments: dict[str, Any]) -> Any:
        kwargs = {k: self.enums[k](v) if k in self.enums else v for k, v in arguments.items()}
        if self.context_param is not None:
            kwargs[self.context_param] = ctx
        return await self.fn(**kwargs)

    def __get__(self, obj: Any, owner: Any = None) -> FunctionTool:
        """On a method: the tool bound to its instance (``agent.tool`` calls with ``self``)."""
        if obj is None:
            return self
        return dataclasses.replace(self, fn=functools.partial(self.fn, obj))


def function_tool(
    fn: Callable[..., Awaitable[Any]] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    raw_schema: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    interruptible: bool = True,
) -> Any:
    """``@function_tool`` or ``@function_tool(name=..., raw_schema=..., timeout=..., interruptible=...)``."""

    def wrap(fn: Callable[..., Awaitable[Any]]) -> FunctionTool:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"@function_tool: {fn.__qualname__} must be an async function")
        doc_description, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        tool_name = name or fn.__name__
        if not NAME.match(tool_name):
            raise ValueError(f"@function_tool: name {tool_name!r} must be 1-64 letters, digits, _ or -")
        schema, context_param, enums = _schema(fn, arg_docs)
        if raw_schema is not None:
            jsonschema.Draft202012Validator.check_schema(raw_schema)
            schema, enums = raw_schema, {}
        description_ = description or doc_description
        return FunctionTool(tool_name, description_, schema, fn, context_param, timeout, interruptible, enums)

    return wrap(fn) if fn is not None else wrap


def find_tools(obj: Any) -> list[FunctionTool]:
    """The tools defined as methods of ``obj``'s class, bound to it."""
    found = []
    for attr in dir(type(obj)):
        if isinstance(inspect.getattr_static(type(obj), attr, None), FunctionTool):
            found.append(getattr(obj, attr))
    return found


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(the first paragraph, {parameter: description} from an ``Args:`` section)."""
    paragraphs = doc.split("\n\n")
    description = " ".join(paragraphs[0].split()) if paragraphs and not paragraphs[0].startswith("Args:") else ""
    args: dict[str, str] = {}
    match = re.search(r"^(?:Args|Arguments|Parameters):\s*\n((?:[ \t]+.*\n?)+)", doc, re.MULTILINE)
    if match:
        current = None
        for line in match.group(1).splitlines():
            m = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)", line)
            if m and (current is None or len(line) - len(line.lstrip()) <= 4):
                current = m.group(1)
                args[current] = m.group(2).strip()
            elif current is not None and line.strip():
                args[current] += " " + line.strip()
    return description, args


def _schema(
    fn: Callable[..., Any], arg_docs: dict[str, str]
) -> tuple[dict[str, Any], str | None, dict[str, type[enum.Enum]]]:
    hints = typing.get_type_hints(fn, include_extras=True)
    properties: dict[str, Any] = {}
    required: list[str] = []
    context_param = None
    enums: dict[str, type[enum.Enum]] = {}
    for param in inspect.signature(fn).parameters.values():
        if param.name == "self":
            continue
        hint = hints.get(param.name, Any)
        if hint is RunContext:
            context_param = param.name
            continue
        prop = _type_schema(hint, f"{fn.__qualname__}({param.name})")
        bare = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
        if isinstance(bare, type) and issubclass(bare, enum.Enum):
            enums[param.name] = bare
        if param.name in arg_docs and "description" not in prop:
            prop["description"] = arg_docs[param.name]
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        elif param.default is not None:
            prop["default"] = param.default.value if isinstance(param.default, enum.Enum) else param.default
        properties[param.name] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema, context_param, enums


_PLAIN = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_schema(hint: Any, where: str) -> dict[str, Any]:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated:
        out = _type_schema(args[0], where)
        notes = [a for a in args[1:] if isinstance(a, str)]
        if notes:
            out["description"] = " ".join(notes)
        return out
    if hint in _PLAIN:
        return {"type": _PLAIN[hint]}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {
            "type": "string" if all(isinstance(m.value, str) for m in hint) else "integer",
            "enum": [m.value for m in hint],
        }
    if origin is typing.Literal:
        kinds = {_PLAIN[type(a)] for a in args if type(a) in _PLAIN}
        return {"type": kinds.pop(), "enum": list(args)} if len(kinds) == 1 else {"enum": list(args)}
    if origin in (list, tuple, set, frozenset) or hint in (list, tuple):
        items = _type_schema(args[0], where) if args and args[0] is not Ellipsis else {}
        return {"type": "array", "items": items} if items else {"type": "array"}
    if origin is dict or hint is dict:
        return {"type": "object"}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            inner = _type_schema(options[0], where)
            return {**inner, "type": [inner["type"], "null"]} if "type" in inner and type(None) in args else inner
        return {"anyOf": [_type_schema(a, where) for a in options]}
    if hint is Any:
        return {}
    raise TypeError(f"@function_tool: {where}: no JSON schema for {hint!r}; use raw_schema=")
