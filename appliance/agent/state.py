"""The agent's states, the moves allowed between them, and the deadline every state carries."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import Callable

from appliance.errors import ApplianceError


class AgentState(enum.StrEnum):
    INITIALIZING = "initializing"
    WAITING_FOR_WAKE = "waiting_for_wake"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    PAUSED = "paused"
    """The user talked over the reply: the speaker holds it while their words decide (cut, or resume)."""
    CLOSED = "closed"


_ALLOWED: dict[AgentState, frozenset[AgentState]] = {
    AgentState.INITIALIZING: frozenset({AgentState.WAITING_FOR_WAKE, AgentState.LISTENING, AgentState.SPEAKING}),
    AgentState.WAITING_FOR_WAKE: frozenset({AgentState.LISTENING, AgentState.THINKING, AgentState.SPEAKING}),
    AgentState.LISTENING: frozenset({AgentState.WAITING_FOR_WAKE, AgentState.THINKING, AgentState.SPEAKING}),
    AgentState.THINKING: frozenset(
        {AgentState.SPEAKING, AgentState.PAUSED, AgentState.LISTENING, AgentState.WAITING_FOR_WAKE}
    ),
    AgentState.SPEAKING: frozenset(
        {AgentState.PAUSED, AgentState.LISTENING, AgentState.WAITING_FOR_WAKE, AgentState.THINKING}
    ),
    AgentState.PAUSED: frozenset(
        {AgentState.SPEAKING, AgentState.THINKING, AgentState.LISTENING, AgentState.WAITING_FOR_WAKE}
    ),
    AgentState.CLOSED: frozenset(),
}


MAX_TICK = 1.0
"""Longest sleep of the deadline timer (it also wakes when a deadline is set)."""


class StateMachine:
    """Current state plus a deadline; ``run()`` tells the owner when the deadline passes."""

    def __init__(self) -> None:
        self._deadline_changed = asyncio.Event()
        self.state = AgentState.INITIALIZING
        self.deadline: float | None = None
        """``time.monotonic()`` by which the state must have been left (None: it may last)."""

    def move(self, new: AgentState, timeout: float | None) -> AgentState:
        """Enter ``new`` (re-entering the same state only renews the deadline); returns the old state."""
        old = self.state
        if new is not old and new is not AgentState.CLOSED and new not in _ALLOWED[old]:
            raise ApplianceError(f"agent state cannot go from {old} to {new}")
        self.state = new
        self.extend(timeout)
        return old

    def extend(self, timeout: float | None) -> None:
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self._deadline_changed.set()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    async def run(self, on_expired: Callable[[AgentState], None]) -> None:
        """The timer: sleeps until the deadline (waking early when it changes), then clears it and calls
        ``on_expired(state)``, which moves the agent on."""
        while True:
            deadline = self.deadline
            wait = MAX_TICK if deadline is None else min(MAX_TICK, max(0.0, deadline - time.monotonic()))
            self._deadline_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deadline_changed.wait(), wait)
            if self.expired():
                state = self.state
                self.extend(None)
                on_expired(state)
