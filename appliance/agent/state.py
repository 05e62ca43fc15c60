"""The agent's states, the moves allowed between them, and the deadline every state carries."""

from __future__ import annotations

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


class StateMachine:
    """Current state plus a deadline; the session's timer moves the agent on when the deadline passes."""

    def __init__(self, on_deadline: Callable[[], None] | None = None) -> None:
        self._on_deadline = on_deadline
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
        if self._on_deadline is not None:
            self._on_deadline()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline
