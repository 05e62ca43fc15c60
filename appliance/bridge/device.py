"""The daemon's side of the room bridge (``[livekit] mode`` or ``run --room``).

Agent mode: the device stays the local assistant until a remote user is in the room; then the local session
steps aside (it hears silence) and a second session, over the same loaded engines, serves the room; when that
session ends (the user left for ``user_grace``), the local assistant is back. The first join happens before
the daemon says READY: a bad key, an expired token or a wrong URL fails the start in one line. A room lost
later is logged, shown in ``status``, and the device goes on as a local one.

Relay mode: "call the kitchen" (a local intent) joins the room named (else ``livekit.room``) with the
microphone and the speaker (``relay.py``); "hang up" leaves it, and so does a room that stays empty.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from appliance.agent import Agent, AgentSession
from appliance.audio.io import AudioOutput
from appliance.bridge.aside import AsideInput
from appliance.bridge.relay import Relay
from appliance.bridge.room import RoomLink
from appliance.bridge.room_agent import RoomAgent
from appliance.config.livekit import LiveKitConfig
from appliance.errors import BridgeError
from appliance.service.watchdog import HeartbeatInput
from appliance.utils.aio import cancel_and_wait
from appliance.utils.stats import or_nan

logger = logging.getLogger(__name__)

JOIN_MARGIN = 5.0
"""Seconds past the connection's own bounds the first join may take before the start gives up."""
NO_CALLS = "Calls are not set up on this device."
ALREADY_IN_CALL = "We are already in a call."
NO_CALL = "There is no call to hang up."
CALL_ENDED = "The call has ended."


class DeviceBridge:
    """Runs the room side next to the local session; ``start()`` joins (agent mode), ``aclose()`` leaves."""

    def __init__(
        self,
        config: LiveKitConfig,
        local: AgentSession,
        aside: AsideInput,
        speaker: AudioOutput,
        make_link: Callable[[str | None], RoomLink],
        make_agent: Callable[[], Agent],
        *,
        on_session: Callable[[AgentSession | None], None] | None = None,
    ) -> None:
        """``make_link(room)``: a link to ``room`` (None: ``livekit.room``)."""
        self.config = config
        self.local = local
        self.aside = aside
        self.speaker = speaker
        self._make_link = make_link
        self.on_session = on_session or (lambda _: None)
        """Told of each room session as it starts, and of None when it ends."""
        self.agent: RoomAgent | None = None
        self.heartbeat: HeartbeatInput | None = None
        if config.mode == "agent":
            options = dataclasses.replace(local.options, require_wake_word=config.wake_word)
            self.agent = RoomAgent(
                make_link(None), config, lambda: local.sibling(options), make_agent, on_session=self._session_changed
            )
            self.heartbeat = HeartbeatInput(self.agent.input)
            self.agent.session_input = self.heartbeat
        self.relay: Relay | None = None
        self._task: asyncio.Task[None] | None = None
        self.problem: str | None = None
        """Why the room was given up, or the last call ended (None while all is well)."""
        self.calls = 0

    async def start(self) -> None:
        """Agent mode: join the room (raises ``BridgeError`` when that fails for good). Relay mode: nothing
        yet; a call joins."""
        if self.agent is None:
            return
        agent = self.agent
        self._task = asyncio.create_task(self._serve(agent), name="room-bridge")
        bound = self.config.connect_timeout + self.config.reconnect_for + JOIN_MARGIN
        joined = asyncio.create_task(agent.joined.wait(), name="room-joined")
        try:
            await asyncio.wait({self._task, joined}, timeout=bound, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await cancel_and_wait(joined)
        if self._task.done():
            self._task.result()  # the join's error
            raise BridgeError("the room bridge ended while joining; see the log above")
        if not agent.joined.is_set():
            await cancel_and_wait(self._task)
            raise BridgeError(
                f"could not join the LiveKit room within {bound:.0f} s; check livekit.url and the network",
                retryable=True,
            )

    async def _serve(self, agent: RoomAgent) -> None:
        try:
            await agent.run()
        except BridgeError as exc:
            if not agent.joined.is_set():
                raise
            self.problem = str(exc)
            logger.error("room given up: the device goes on locally", extra={"error": str(exc)})

    def _session_changed(self, session: AgentSession | None) -> None:
        if session is not None:
            self.local.interrupt()  # the local reply, if any, gives way
            self.aside.step_aside()
        else:
            self.aside.come_back()
        self.on_session(session)

    # --- relay mode: the local intents "call ..." and "hang up" ----------------------------------------

    async def start_call(self, room: str | None) -> str:
        """Join ``room`` (None: ``livekit.room``) with the microphone and speaker; returns what to say."""
        if self.config.mode != "relay":
            return NO_CALLS
        if self._task is not None and not self._task.done():
            return ALREADY_IN_CALL
        name = room or self.config.room
        self.relay = Relay(
            self._make_link(name),
            self.config,
            self.aside,
            self.speaker,
            hear_wake_word=self.local.options.require_wake_word,
        )
        self.calls += 1
        self._task = asyncio.create_task(self._call(self.relay), name="room-relay")
        return f"Calling {name}."

    async def _call(self, relay: Relay) -> None:
        try:
            why = await relay.run()
            self.problem = None
        except BridgeError as exc:
            why = self.problem = str(exc)
            logger.error("call failed", extra={"error": why})
        logger.info("call ended", extra={"why": why})
        self.local.announce(CALL_ENDED)

    async def hang_up(self) -> str:
        if self.config.mode != "relay":
            return NO_CALLS
        if self._task is None or self._task.done():
            return NO_CALL
        task, self._task = self._task, None
        await cancel_and_wait(task)
        return CALL_ENDED

    # --- what the daemon shows ---------------------------------------------------------------------------

    @property
    def last_frame_at(self) -> float:
        """When a room session last took a frame of room audio (the watchdog counts it as alive)."""
        return self.heartbeat.last_frame_at if self.heartbeat is not None else 0.0

    def gauges(self) -> list[tuple[str, str, Callable[[], float]]]:
        """The room's figures for Prometheus: name, help, and a reader (NaN while not known)."""
        agent = self.agent
        if agent is None:
            return []
        return [
            (
                "appliance_room_round_trip_seconds",
                "Round trip to the LiveKit server",
                lambda: or_nan(agent.stats.round_trip),
            ),
            ("appliance_room_jitter_seconds", "Jitter of the room user's audio", lambda: or_nan(agent.stats.jitter)),
            (
                "appliance_room_packets_lost",
                "Packets of the room user's audio lost",
                lambda: or_nan(agent.stats.packets_lost),
            ),
            (
                "appliance_room_first_audio_seconds",
                "Seconds from attaching the room user's track to its first audio",
                lambda: or_nan(agent.first_audio_seconds),
            ),
        ]

    def snapshot(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": self.config.mode, "problem": self.problem}
        if self.agent is not None:
            out.update(self.agent.snapshot())
        else:
            relay = self.relay
            in_call = self._task is not None and not self._task.done()
            out.update(
                {
                    "in_call": in_call,
                    "calls": self.calls,
                    "remote": relay.remote if relay and in_call else None,
                    "frames_sent": relay.frames_sent if relay else 0,
                    "frames_played": relay.frames_played if relay else 0,
                }
            )
        return out

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)
        if self.agent is not None and self.agent.state != "closed":
            await self.agent.aclose()
