"""The local intents as tools, so a request the grammar did not match ("could you wake me from my nap in
twenty minutes") still sets the timer through the LLM. Each tool carries out the same intent the grammar
would, and answers with the words the device would have said."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence

from appliance.agent.agent import Agent, ask
from appliance.agent.tools import FunctionTool, ToolError, function_tool
from appliance.intents import speech
from appliance.intents.duration import parse_duration
from appliance.intents.grammar import Intent, IntentKind
from appliance.intents.handler import IntentHandler
from appliance.intents.normalize import normalize
from appliance.llm.base import LLM, ChatChunk, ChatContext, FunctionOutputItem, Role, ToolSpec


def intent_tools(handler: IntentHandler) -> list[FunctionTool]:
    async def run(intent: Intent) -> str:
        answer = await handler.handle(intent, last_reply=None)
        if answer is None:
            raise ToolError("not available on this device")
        return answer.say

    @function_tool
    async def set_timer(duration: str, label: str = "") -> str:
        """Start a countdown timer that rings when it is done.

        Args:
            duration: how long it runs, in the user's words, e.g. 20 minutes, 1 hour, 90 seconds
            label: what it is for, e.g. pasta (may be empty)
        """
        seconds = parse_duration(normalize(duration))
        if seconds is None:
            raise ToolError(f"{duration!r} is not a duration; give a number and a unit, e.g. 20 minutes")
        return await run(Intent(IntentKind.TIMER_SET, seconds=seconds, label=label.strip() or None))

    @function_tool
    async def timers_left() -> str:
        """The timers running now and how long each has left."""
        return await run(Intent(IntentKind.TIMER_LEFT))

    @function_tool
    async def cancel_timer(label: str = "") -> str:
        """Stop a running timer.

        Args:
            label: which timer (empty: all of them)
        """
        return await run(Intent(IntentKind.TIMER_CANCEL, label=label.strip() or None))

    @function_tool
    async def set_volume(level: int) -> str:
        """Set the speaker's volume.

        Args:
            level: 0 (silent) to 100 (loudest)
        """
        if not 0 <= level <= 100:
            raise ToolError("level must be 0 to 100")
        return await run(Intent(IntentKind.VOLUME_SET, level=level))

    @function_tool
    async def current_time() -> str:
        """The local time and today's date."""
        now = handler.now()
        return f"{speech.say_time(now)} {speech.say_date(now)}"

    @function_tool
    async def start_call(room: str = "") -> str:
        """Call a room: the device's microphone and speaker join the people there until the call is hung up.

        Args:
            room: who or where to call, e.g. kitchen (empty: the usual room)
        """
        name = "-".join(room.lower().split())
        return await run(Intent(IntentKind.CALL, label=name or None))

    @function_tool
    async def hang_up() -> str:
        """End the call in progress."""
        return await run(Intent(IntentKind.HANG_UP))

    return [set_timer, timers_left, cancel_timer, set_volume, current_time, start_call, hang_up]


_TIMER = r"(?:timers?|alarms?|countdowns?|reminders?)"
_ABOUT = {
    "set_timer": rf"\b(?:{_TIMER}|remind me|wake me)\b",
    "timers_left": rf"^(?=.*\b{_TIMER}\b)(?=.*\b(?:left|remaining|how long|how much)\b)",
    "cancel_timer": rf"^(?=.*\b{_TIMER}\b)(?=.*\b(?:cancel|stop|delete|remove|clear|turn off)\b)",
    "set_volume": r"\b(?:volume|louder|quieter|softer|mute|loud|quiet)\b",
    "current_time": r"\b(?:what time|the time|time is it|the date|what day|which day|today's date)\b",
    "start_call": r"\b(?:call|ring|phone|dial)\b",
    "hang_up": r"\b(?:hang up|(?:end|stop|leave|finish) (?:the|this) (?:call|room))\b",
}
CALL_TOOLS = ("start_call", "hang_up")
"""Offered only on a device that places calls (``IntentHandler.calls``)."""
ABOUT = {name: re.compile(pattern, re.IGNORECASE) for name, pattern in _ABOUT.items()}
"""The words that make a turn about each tool: only then is it offered to the model."""


class DeviceAgent(Agent):
    """The assistant with the device's intents as tools, each offered to the model only on a turn that speaks
    of what it does. Offered on every turn, the tools' description makes the default model answer worse (31 of
    35 questions right against 35) and costs the prompt a few hundred tokens; the grammar answers the usual
    phrasings before the model is asked at all."""

    def __init__(self, instructions: str, handler: IntentHandler, *, chat_ctx: ChatContext | None = None) -> None:
        super().__init__(instructions, tools=intent_tools(handler), chat_ctx=chat_ctx)
        self._handler = handler

    def _offered(self, tools: Sequence[ToolSpec], said: str) -> list[ToolSpec]:
        offered = [t for t in tools if t.name not in ABOUT or ABOUT[t.name].search(said)]
        if self._handler.calls is None:
            offered = [t for t in offered if t.name not in CALL_TOOLS]
        return offered

    def tools_before_words(self, tools: Sequence[ToolSpec]) -> Sequence[ToolSpec]:
        return self._offered(tools, "")

    def llm_node(self, chat_ctx: ChatContext, tools: Sequence[ToolSpec], llm: LLM) -> AsyncIterator[ChatChunk]:
        said = next((m.content for m in reversed(chat_ctx.messages()) if m.role is Role.USER), "")
        offered = self._offered(tools, said)
        if chat_ctx.items and isinstance(chat_ctx.items[-1], FunctionOutputItem):
            return super().llm_node(chat_ctx, [], llm)  # the call is answered: now the words
        if not offered or not all(t.name in ABOUT for t in offered):
            return super().llm_node(chat_ctx, offered, llm)
        # a turn about the device: the model's first step is a call (a small model otherwise explains how it
        # would call the tool), and the step after the call's answer is its reply in words
        return ask(llm, chat_ctx, offered, tool_choice="required")
