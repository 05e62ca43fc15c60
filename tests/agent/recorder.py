"""What a session did: every event it emitted, in order, for the agent tests to read."""

from __future__ import annotations

from typing import Any

from appliance.agent import AgentSession, AgentState
from appliance.agent import events as ev
from appliance.audio.io import RecordingOutput


class Run:
    def __init__(self, session: AgentSession, output: RecordingOutput) -> None:
        self.session, self.output = session, output
        self.events: list[Any] = []
        for kind in ev.EventType:
            session.on(kind, self.events.append)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def states(self) -> list[AgentState]:
        return [e.new_state for e in self.of(ev.AgentStateChangedEvent)]

    def items(self) -> list[tuple[str, str]]:
        return [(e.item.role.value, e.item.content) for e in self.of(ev.ConversationItemAddedEvent)]
