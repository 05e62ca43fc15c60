"""A shipped example of tools, a task and a handoff: the general assistant hands kitchen timers to a
``KitchenTimers`` task, which sets and lists them and hands the conversation back when the user is done.

Run it on a recording with any engines: ``Agent``s are engine-agnostic; the tests drive it with a scripted
model that asks for the calls.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from appliance.agent.agent import DEFAULT_INSTRUCTIONS, Agent, AgentTask
from appliance.agent.tools import RunContext, ToolError, function_tool


@dataclass
class Kitchen:
    """What the tasks share (the session's ``userdata``): the timers by name, each with its end time."""

    timers: dict[str, float] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    """The hooks, in the order they ran."""


class KitchenTimers(AgentTask):
    def __init__(self, general: General) -> None:
        self._general = general
        super().__init__(
            "You manage kitchen timers. Set them, say which are running, and hand back when the user is done."
        )

    async def on_enter(self) -> None:
        self._general.kitchen.log.append("timers: enter")

    async def on_exit(self) -> None:
        self._general.kitchen.log.append("timers: exit")

    @function_tool
    async def set_timer(self, ctx: RunContext, name: str, minutes: float) -> str:
        """Start a kitchen timer.

        Args:
            name: what the timer is for, e.g. pasta
            minutes: how long it runs
        """
        if not 0 < minutes <= 24 * 60:
            raise ToolError("minutes must be more than 0 and at most a day")
        kitchen: Kitchen = ctx.userdata
        kitchen.timers[name] = time.time() + minutes * 60
        return f"{name} timer set for {minutes:g} minutes"

    @function_tool
    async def list_timers(self, ctx: RunContext) -> list[str]:
        """The timers running now, with the minutes left."""
        kitchen: Kitchen = ctx.userdata
        now = time.time()
        return [f"{name}: {max(0.0, (end - now) / 60):.0f} minutes left" for name, end in kitchen.timers.items()]

    @function_tool
    async def done(self) -> Agent:
        """The user has nothing more to do with timers: back to the general assistant."""
        return self._general


class General(Agent):
    def __init__(self, kitchen: Kitchen, instructions: str = DEFAULT_INSTRUCTIONS) -> None:
        self.kitchen = kitchen
        super().__init__(instructions)

    async def on_enter(self) -> None:
        self.kitchen.log.append("general: enter")

    async def on_exit(self) -> None:
        self.kitchen.log.append("general: exit")

    @function_tool
    async def kitchen_timers(self) -> Agent:
        """Anything about kitchen timers: setting one, or asking which are running."""
        return KitchenTimers(self)
