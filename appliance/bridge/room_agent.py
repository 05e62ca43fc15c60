"""Agent mode: the device's assistant as a participant of a room, talking with one remote user.

The device joins, publishes its voice, and waits for its user (``livekit.participant``, else the first remote
participant with a microphone). A session (a new ``AgentSession`` over the same loaded engines) hears that
user's track and speaks into the published one; captions of both sides go to the room as text streams on
``lk.transcription`` and the agent's state to the participant attribute ``lk.agent.state``, as LiveKit clients
expect. A user who leaves has ``user_grace`` seconds to come back to the same conversation; then the session
ends and the device waits for the next user. A connection the SDK cannot restore is joined again with
backoff for ``reconnect_for`` seconds, the session and its conversation kept meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.agent import Agent, AgentSession
from appliance.agent import events as ev
from appliance.agent.state import AgentState
from appliance.audio.io import AudioInput
from appliance.bridge.audio import RoomAudioInput, RoomAudioOutput
from appliance.bridge.room import LinkStats, RoomEvent, RoomEventKind, RoomLink
from appliance.config.livekit import LiveKitConfig
from appliance.errors import BridgeError
from appliance.llm.base import ChatMessage, Role
from appliance.utils.aio import cancel_and_wait

logger = logging.getLogger(__name__)

LK_STATE = {
    AgentState.INITIALIZING: "initializing",
    AgentState.WAITING_FOR_WAKE: "idle",
    AgentState.LISTENING: "listening",
    AgentState.THINKING: "thinking",
    AgentState.SPEAKING: "speaking",
    AgentState.PAUSED: "speaking",
}
"""The session's states as LiveKit clients name them (``lk.agent.state``)."""
CAPTIONS_TOPIC = "lk.transcription"
SEND_TIMEOUT = 5.0
"""Seconds one caption or attribute update may take before it is dropped (the room may be away)."""
STATS_INTERVAL = 5.0
CLOSE_TIMEOUT = 5.0


class RoomAgent:
    """One connection to one room, serving one user at a time; ``run()`` until cancelled or the room is lost."""

    def __init__(
        self,
        link: RoomLink,
        config: LiveKitConfig,
        make_session: Callable[[], AgentSession],
        make_agent: Callable[[], Agent],
        *,
        output_rate: int | None = None,
        on_session: Callable[[AgentSession | None], None] | None = None,
    ) -> None:
        """``make_session``: a new session over the loaded engines, one per user; ``on_session`` is told of each
        (and of None when it ends), so a service can watch it."""
        self.link = link
        self.config = config
        self._make_session = make_session
        self._make_agent = make_agent
        self._on_session = on_session or (lambda _: None)
        self.input = RoomAudioInput()
        self.session_input: AudioInput = self.input
        """What sessions read: the room's input, or a wrapper of it (a heartbeat for the watchdog)."""
        self.joined = asyncio.Event()
        """Set once the room is joined and the device's voice published."""
        self.output = RoomAudioOutput(None, output_rate or config.publish_rate)
        self.session: AgentSession | None = None
        self.user: str | None = None
        self.state = "connecting"
        """``connecting``, ``waiting`` (for a user), ``serving``, ``user_away``, ``reconnecting``, ``closed``."""
        self._grace_until: float | None = None
        self._outbox: asyncio.Queue[Callable[[], Awaitable[None]]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.stats = LinkStats()
        self.connect_seconds: float | None = None
        self.first_audio_seconds: float | None = None
        """Seconds from attaching the user's track to its first audio: the room's time to first audio."""
        self._attached_at = 0.0
        self.sessions = 0
        self.reconnects = 0
        self._warned_absent = False
        self._user_segment: str | None = None
        self._segments = 0

    async def run(self) -> None:
        try:
            started = time.monotonic()
            await self.link.connect()
            self.connect_seconds = time.monotonic() - started
            self.output.set_sink(await self.link.publish_audio(self.output.sample_rate))
            logger.info("joined room", extra={"seconds": round(self.connect_seconds, 3)})
            self.joined.set()
            self._tasks = [
                asyncio.create_task(self._send_loop(), name="room-outbox"),
                asyncio.create_task(self._stats_loop(), name="room-stats"),
            ]
            self._set_state("waiting")
            await self._pick_user()
            while True:
                event = await self._next_event()
                if event is None:  # the grace period ran out
                    await self._end_session("the user left")
                    await self._pick_user()
                    continue
                await self._handle(event)
        finally:
            await self.aclose()

    async def _next_event(self) -> RoomEvent | None:
        timeout = None if self._grace_until is None else max(0.0, self._grace_until - time.monotonic())
        if timeout is None and self.user is None and self.config.participant and not self._warned_absent:
            timeout = self.config.user_grace  # say once if the user named in the config never shows up
        try:
            async with asyncio.timeout(timeout):
                return await self.link.events.get()
        except TimeoutError:
            if self._grace_until is not None:
                return None
            self._warned_absent = True
            there = ", ".join(self.link.participants()) or "nobody"
            logger.warning(
                "named participant not in the room",
                extra={
                    "participant": self.config.participant,
                    "there": there,
                    "fix": "set livekit.participant to one of those there, or leave it empty for the first to join",
                },
            )
            return await self._next_event()

    async def _handle(self, event: RoomEvent) -> None:
        kind = event.kind
        if kind in (RoomEventKind.AUDIO_AVAILABLE, RoomEventKind.PARTICIPANT_JOINED):
            if self.user is None or event.identity == self.user:
                await self._pick_user()
        elif kind in (RoomEventKind.AUDIO_GONE, RoomEventKind.PARTICIPANT_LEFT) and event.identity == self.user:
            await self._user_away(event)
        elif kind is RoomEventKind.RECONNECTING:
            self._set_state("reconnecting")
        elif kind is RoomEventKind.RECONNECTED:
            self._set_state("serving" if self.input.attached else "waiting")
        elif kind is RoomEventKind.DISCONNECTED:
            await self._rejoin(event.reason)

    def _wanted(self) -> str | None:
        """Who to serve now: the user named in the config, else the one served before, else the first there."""
        there = [p for p in self.link.participants() if self.link.has_audio(p)]
        if self.config.participant:
            return self.config.participant if self.config.participant in there else None
        if self.user in there:
            return self.user
        return there[0] if there else None

    async def _pick_user(self) -> None:
        identity = self._wanted()
        if identity is None or (identity == self.input.identity and self.input.attached):
            return
        if self.user is not None and identity != self.user:
            await self._end_session("another user")
        self.user, self._grace_until = identity, None
        self._attached_at = time.monotonic()
        self.first_audio_seconds = None
        await self.input.attach(identity, self.link.open_audio(identity))
        if self.session is None:
            await self._start_session()
        self._set_state("serving")
        logger.info("serving participant", extra={"participant": identity})

    async def _user_away(self, event: RoomEvent) -> None:
        await self.input.detach()
        if self.session is not None:
            self.session.interrupt()  # nobody is there to hear the rest
        self._grace_until = time.monotonic() + self.config.user_grace
        self._set_state("user_away")
        logger.info("participant away", extra={"participant": event.identity, "grace": self.config.user_grace})
        await self._pick_user()  # another one may already be waiting (when none is named)

    async def _start_session(self) -> None:
        session = self._make_session()
        session.on(ev.EventType.AGENT_STATE_CHANGED, self._on_state)
        session.on(ev.EventType.USER_INPUT_TRANSCRIBED, self._on_transcript)
        session.on(ev.EventType.CONVERSATION_ITEM_ADDED, self._on_item)
        await session.start(self._make_agent(), audio_input=self.session_input, audio_output=self.output)
        self.session = session
        self.sessions += 1
        self._on_session(session)

    async def _end_session(self, why: str) -> None:
        session, self.session = self.session, None
        self.user, self._grace_until = None, None
        await self.input.detach()
        if session is not None:
            self.output.clear_buffer()
            try:
                await asyncio.wait_for(session.aclose(), CLOSE_TIMEOUT)
            except TimeoutError:
                logger.error("room session did not close", extra={"seconds": CLOSE_TIMEOUT})
            self._on_session(None)
            logger.info("room session ended", extra={"why": why})
        self._queue(lambda: self.link.set_attributes({"lk.agent.state": "idle"}))
        self._set_state("waiting")

    async def _rejoin(self, reason: str) -> None:
        """The SDK gave the connection up: join again, the session and its conversation kept meanwhile."""
        self._set_state("reconnecting")
        logger.warning("room connection lost: joining again", extra={"reason": reason})
        await self.input.detach()
        self.output.set_sink(None)
        await self.link.connect()  # bounded by reconnect_for inside; a BridgeError ends the bridge
        self.reconnects += 1
        self.output.set_sink(await self.link.publish_audio(self.output.sample_rate))
        self._set_state("waiting" if self.session is None else "user_away")
        if self.session is not None and self._grace_until is None:
            self._grace_until = time.monotonic() + self.config.user_grace
        await self._pick_user()

    # --- what the room is told --------------------------------------------------------------------

    def _set_state(self, state: str) -> None:
        if state != self.state:
            logger.info("room bridge state", extra={"old": self.state, "new": state})
            self.state = state

    def _on_state(self, e: ev.AgentStateChangedEvent) -> None:
        lk = LK_STATE.get(e.new_state)
        if lk is not None:
            self._queue(lambda: self.link.set_attributes({"lk.agent.state": lk}))

    def _on_transcript(self, e: ev.UserInputTranscribedEvent) -> None:
        if self.user is None or not e.transcript:
            return
        if self._user_segment is None:  # the early transcript and the final one are one caption, updated
            self._segments += 1
            self._user_segment = f"user_{self._segments}"
        attributes = {
            "lk.transcribed_track_id": self.link.audio_track_id(self.user),
            "lk.transcription_final": "true" if e.is_final else "false",
            "lk.segment_id": self._user_segment,
        }
        if e.is_final:
            self._user_segment = None
        self._queue(lambda: self.link.send_text(CAPTIONS_TOPIC, e.transcript, attributes))

    def _on_item(self, e: ev.ConversationItemAddedEvent) -> None:
        item = e.item
        if not isinstance(item, ChatMessage) or item.role is not Role.ASSISTANT or not item.content:
            return
        attributes = {
            "lk.transcribed_track_id": self.link.audio_track_id(None),
            "lk.transcription_final": "true",
            "lk.segment_id": item.id,
        }
        self._queue(lambda: self.link.send_text(CAPTIONS_TOPIC, item.content, attributes))

    def _queue(self, send: Callable[[], Awaitable[None]]) -> None:
        self._outbox.put_nowait(send)

    async def _send_loop(self) -> None:
        """One send at a time, in order, each bounded: a slow room delays captions, never the agent."""
        while True:
            send = await self._outbox.get()
            try:
                async with asyncio.timeout(SEND_TIMEOUT):
                    await send()
            except (TimeoutError, BridgeError, ConnectionError, RuntimeError) as exc:
                logger.warning("room update not sent", extra={"error": str(exc) or type(exc).__name__})

    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_INTERVAL)
            if self.first_audio_seconds is None and self.input.first_audio_at is not None:
                self.first_audio_seconds = self.input.first_audio_at - self._attached_at
            try:
                async with asyncio.timeout(SEND_TIMEOUT):
                    self.stats = await self.link.stats()
            except (TimeoutError, BridgeError, RuntimeError) as exc:
                logger.debug("room stats not read", extra={"error": str(exc)})

    def snapshot(self) -> dict[str, Any]:
        if self.first_audio_seconds is None and self.input.first_audio_at is not None:
            self.first_audio_seconds = self.input.first_audio_at - self._attached_at
        return {
            "state": self.state,
            "user": self.user,
            "sessions": self.sessions,
            "reconnects": self.reconnects,
            "connect_seconds": self.connect_seconds,
            "first_audio_seconds": self.first_audio_seconds,
            "frames_received": self.input.frames_received,
            "frames_sent": self.output.frames_sent,
            **self.stats.as_dict(),
        }

    async def aclose(self) -> None:
        if self.session is not None:
            await self._end_session("closing")
        await cancel_and_wait(*self._tasks)
        await self.input.aclose()
        await self.output.aclose()
        self.state = "closed"
        await self.link.disconnect()
