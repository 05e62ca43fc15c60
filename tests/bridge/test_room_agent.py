"""The room logic (agent mode) on the in-memory room: who is served, a user who leaves and comes back, the end of
a session after the grace period, a dropped connection joined again with the conversation kept, captions and
the agent's state for LiveKit clients, and a barge-in that clears the published audio.

The real AgentSession runs over the scripted engines (tests/agent/scripted.py); audio is SYNTHETIC.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from appliance.agent import Agent, AgentSession, SessionOptions
from appliance.bridge.room_agent import RoomAgent
from appliance.config.livekit import LiveKitConfig
from appliance.errors import BridgeError
from appliance.llm.base import ChatMessage, Role
from tests.agent.scripted import engines, quiet, speech
from tests.bridge.fake_room import FakeRoom, until

QUESTION = np.concatenate([speech(1.0), quiet(0.2)])


class Bench:
    """A bridge on a fake room, its task, and the scripted engines every session shares."""

    def __init__(self, **config: Any) -> None:
        self.room = FakeRoom()
        self.stages = engines()
        self.config = LiveKitConfig(mode="agent", url="ws://127.0.0.1:7880", room="kitchen", **config)
        options = SessionOptions(require_wake_word=False, earcons=False)
        self.bridge = RoomAgent(
            self.room,
            self.config,
            lambda: AgentSession(options=options, **self.stages),
            Agent,
            output_rate=48000,
        )
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Bench:
        self.task = asyncio.create_task(self.bridge.run())
        await until(lambda: self.room.sinks)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        if not self.task.done():
            self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        self.stages["vad"].close()

    def user_messages(self, request: int = -1) -> list[str]:
        return [
            i.content
            for i in self.stages["llm"].seen[request].items
            if isinstance(i, ChatMessage) and i.role is Role.USER
        ]

    async def ask(self, identity: str) -> None:
        """``identity`` asks a question and the reply plays to its end in the room."""
        replies = len(self.stages["llm"].seen)
        sink = self.room.sink
        before = sink.loud_seconds()
        await self.room.speak(identity, QUESTION)
        await until(lambda: len(self.stages["llm"].seen) > replies)
        await until(lambda: sink.loud_seconds() - before > 1.5)


def test_serves_the_first_participant_with_captions_and_state_for_livekit_clients() -> None:
    async def go() -> None:
        async with Bench() as b:
            assert b.bridge.session is None and b.bridge.state == "waiting"
            b.room.join("alice")
            await until(lambda: b.bridge.session is not None)
            assert b.bridge.user == "alice" and b.bridge.state == "serving"
            await b.ask("alice")
            await until(lambda: b.room.captions("TR_device"))
            assert b.room.captions("TR_device") == ["It is noon. Time for lunch."]
            user = [(t, a) for _, t, a in b.room.texts if a["lk.transcribed_track_id"] == "TR_alice"]
            # the early transcript, then the final one, as one caption (one segment) that is updated
            assert [t for t, _ in user] == ["what time is it", "what time is it"]
            assert [a["lk.transcription_final"] for _, a in user] == ["false", "true"]
            assert len({a["lk.segment_id"] for _, a in user}) == 1
            states = [a["lk.agent.state"] for a in b.room.attributes]
            assert states[0] == "listening"
            assert "thinking" in states and "speaking" in states
            await until(lambda: b.room.attributes[-1]["lk.agent.state"] == "listening")
            assert b.room.sink.sample_rate == 48000
            snapshot = b.bridge.snapshot()
            assert snapshot["user"] == "alice" and snapshot["sessions"] == 1
            assert 0 < snapshot["first_audio_seconds"] < 0.5  # from attaching the track to its first frame

    asyncio.run(go())


def test_a_named_participant_is_the_only_one_served() -> None:
    async def go() -> None:
        async with Bench(participant="bob") as b:
            b.room.join("alice")
            await asyncio.sleep(0.2)  # nothing must happen: give the bridge time to act wrongly
            assert b.bridge.session is None
            b.room.join("bob")
            await until(lambda: b.bridge.user == "bob")
            await b.ask("bob")
            assert b.user_messages() == ["what time is it"]

    asyncio.run(go())


def test_a_named_participant_who_never_comes_is_said_once_with_who_is_there(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> None:
        async with Bench(participant="bob", user_grace=0.3) as b:
            b.room.join("alice")
            await until(lambda: any(r.getMessage() == "named participant not in the room" for r in caplog.records))
            await asyncio.sleep(0.5)  # and not again
            said = [r for r in caplog.records if r.getMessage() == "named participant not in the room"]
            assert len(said) == 1 and said[0].there == "alice" and "livekit.participant" in said[0].fix
            assert b.bridge.session is None

    with caplog.at_level("WARNING", logger="appliance.bridge"):
        asyncio.run(go())


def test_a_user_back_within_the_grace_period_goes_on_with_the_same_conversation() -> None:
    async def go() -> None:
        async with Bench(user_grace=5.0) as b:
            b.room.join("alice")
            await until(lambda: b.bridge.session is not None)
            await b.ask("alice")
            b.room.leave("alice")
            await until(lambda: b.bridge.state == "user_away")
            assert b.room.tracks["alice"].closed
            b.room.join("alice")
            await until(lambda: b.bridge.state == "serving")
            await b.ask("alice")
            assert b.bridge.sessions == 1
            assert b.user_messages() == ["what time is it", "what time is it"]

    asyncio.run(go())


def test_the_session_ends_after_the_grace_period_and_the_next_user_starts_afresh() -> None:
    async def go() -> None:
        async with Bench(user_grace=0.3) as b:
            b.room.join("alice")
            await until(lambda: b.bridge.session is not None)
            await b.ask("alice")
            b.room.leave("alice")
            await until(lambda: b.bridge.session is None, within=3.0)
            assert b.bridge.state == "waiting"
            await until(lambda: b.room.attributes[-1] == {"lk.agent.state": "idle"})
            b.room.join("bob")
            await until(lambda: b.bridge.user == "bob")
            await b.ask("bob")
            assert b.bridge.sessions == 2
            assert b.user_messages() == ["what time is it"]  # nothing of alice's conversation

    asyncio.run(go())


def test_a_dropped_connection_is_joined_again_with_the_conversation_kept() -> None:
    async def go() -> None:
        async with Bench(user_grace=10.0) as b:
            b.room.join("alice")
            await until(lambda: b.bridge.session is not None)
            await b.ask("alice")
            b.room.drop()
            await until(lambda: b.room.connects == 2 and len(b.room.sinks) == 2)
            assert b.bridge.reconnects == 1 and b.bridge.session is not None
            b.room.join("alice")
            await until(lambda: b.bridge.state == "serving")
            await b.ask("alice")  # heard through the newly published track
            assert b.bridge.sessions == 1
            assert b.user_messages() == ["what time is it", "what time is it"]

    asyncio.run(go())


def test_a_connection_that_cannot_be_restored_ends_the_bridge_with_its_error() -> None:
    async def go() -> None:
        async with Bench() as b:
            b.room.join("alice")
            await until(lambda: b.bridge.session is not None)
            b.room.fail_connect.append(BridgeError("the LiveKit server refused the API key", retryable=False))
            b.room.drop()
            assert b.task is not None
            with pytest.raises(BridgeError, match="refused the API key"):
                await asyncio.wait_for(b.task, 5.0)
            assert not b.room.connected and b.bridge.state == "closed"

    asyncio.run(go())


def test_talking_over_a_reply_clears_the_published_audio() -> None:
    async def go() -> None:
        async with Bench() as b:
            b.stages["llm"].reply = "One two three four five six. " * 6
            b.room.join("alice")
            await until(lambda: b.bridge.session is not None)
            await b.room.speak("alice", QUESTION)
            await until(lambda: b.room.sink.loud_seconds() > 1.0)
            cleared = b.room.sink.cleared
            await b.room.speak("alice", np.concatenate([speech(1.2, seed=3), quiet(0.3)]))
            await until(lambda: b.room.sink.cleared > cleared)
            await until(lambda: len(b.stages["llm"].seen) == 2)
            assert b.bridge.session is not None
            items = b.bridge.session.chat_ctx.items
            cut = [i for i in items if isinstance(i, ChatMessage) and i.role is Role.ASSISTANT]
            assert cut and cut[0].interrupted
            assert 0 < len(cut[0].content) < len(b.stages["llm"].reply.strip())

    asyncio.run(go())
