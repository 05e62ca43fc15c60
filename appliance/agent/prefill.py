"""While the user speaks, the model reads the conversation up to their message.

A reply's first token waits for the model to read its prompt. Most of that prompt was read for the reply
before; what is new is the end of that reply, the template's opening of the user's message, the user's words
and the opening of the answer: 14 to 23 tokens a turn with the default model, about 20 ms each on 2 cores.
All but the words and the answer's opening are known before the user says anything, and a turn cut short
changes more (the reply becomes a note of what was heard), so the model reads them while the user is still
speaking: from the wake word, or from the first sound of a follow-up. Not as soon as a reply ends: the user
may not speak at all, and the reply's echo is still in the room while the model would take both cores. The
request for the reply stops it within a few tokens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from appliance.agent import events as ev
from appliance.agent.state import AgentState
from appliance.llm.base import LLM, ChatContext, ToolSpec
from appliance.utils.aio import cancel_and_wait

logger = logging.getLogger(__name__)

PREFILL_TIMEOUT = 10.0
"""Seconds a prefill may take (it is only a head start: past this, the reply reads the rest itself)."""

Request = tuple[LLM, ChatContext, list[ToolSpec]]
"""The model the next reply goes to, the conversation it will be given, and the tools it will offer."""


class Prefill:
    """Starts ``LLM.prefill`` when the user speaks to the device: at the wake word (they go on speaking), and
    when they start speaking while it listens (a follow-up). One at a time: a newer replaces an older."""

    def __init__(self, request: Callable[[], Request]) -> None:
        self._request = request
        self._task: asyncio.Task[None] | None = None
        self._listening = False

    def on_state(self, event: ev.AgentStateChangedEvent) -> None:
        self._listening = event.new_state is AgentState.LISTENING
        if self._listening and event.old_state is AgentState.WAITING_FOR_WAKE:
            self.start()

    def on_speech(self, event: ev.UserStartedSpeakingEvent) -> None:
        if self._listening:
            self.start()

    def start(self) -> None:
        if self._task is not None:
            self._task.cancel()
        llm, chat_ctx, tools = self._request()
        self._task = asyncio.create_task(self._run(llm, chat_ctx, tools), name="llm-prefill")

    async def _run(self, llm: LLM, chat_ctx: ChatContext, tools: list[ToolSpec]) -> None:
        try:
            await asyncio.wait_for(llm.prefill(chat_ctx, tools=tools), PREFILL_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a head start missed: the reply reads its whole prompt, as without one
            logger.debug("llm prefill failed", extra={"error": str(exc)})

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
