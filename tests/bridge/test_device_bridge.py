"""The daemon's side of the bridge on the in-memory room: the local assistant steps aside while a room user is
served and comes back after; a join that fails stops the start; relay mode's calls put the microphone and
the speaker in the room and take them back.

The real AgentSession runs over the scripted engines (tests/agent/scripted.py); audio is SYNTHETIC.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from appliance.agent import Agent, AgentSession, SessionOptions
from appliance.audio.io import RecordingOutput
from appliance.bridge.aside import AsideInput
from appliance.bridge.audio import RoomAudioInput
from appliance.bridge.device import CALL_ENDED, NO_CALL, DeviceBridge
from appliance.config.livekit import LiveKitConfig
from appliance.errors import BridgeError
from tests.agent.scripted import engines
from tests.bridge.fake_room import FakeRoom, FakeTrack, until
from tests.bridge.test_room_agent import QUESTION


class Device:
    """A local session on a microphone the test speaks into, a recording speaker, and the bridge."""

    def __init__(self, mode: str, **config: Any) -> None:
        self.stages = engines()
        self.room = FakeRoom()
        self.rooms: list[str | None] = []
        self.config = LiveKitConfig(mode=mode, url="ws://127.0.0.1:7880", room="kitchen", **config)
        self.session = AgentSession(options=SessionOptions(require_wake_word=False, earcons=False), **self.stages)
        self.mic = RoomAudioInput()
        self.mic_track = FakeTrack()
        self.aside = AsideInput(self.mic)
        self.speaker = RecordingOutput(self.stages["tts"].sample_rate, realtime=True)
        self.bridge = DeviceBridge(self.config, self.session, self.aside, self.speaker, self._link, lambda: Agent())

    def _link(self, room: str | None) -> FakeRoom:
        self.rooms.append(room)
        return self.room

    async def __aenter__(self) -> Device:
        await self.mic.attach("local", self.mic_track)
        await self.session.start(Agent(), audio_input=self.aside, audio_output=self.speaker)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.bridge.aclose()
        await self.session.aclose()
        await self.speaker.aclose()
        await self.mic.aclose()
        self.stages["vad"].close()

    async def say_locally(self, audio: np.ndarray) -> None:
        for start in range(0, audio.size, 320):
            await asyncio.sleep(0.02)
            self.mic_track.frames.put_nowait(_frame(audio[start : start + 320]))

    def requests(self) -> int:
        return len(self.stages["llm"].seen)


def _frame(data: np.ndarray) -> Any:
    from appliance.audio.frame import SAMPLE_RATE, AudioFrame

    return AudioFrame(data, SAMPLE_RATE)


def test_the_local_assistant_steps_aside_while_a_room_user_is_served_and_comes_back_after() -> None:
    async def go() -> None:
        async with Device("agent", user_grace=0.3) as d:
            await d.bridge.start()
            assert d.room.connected and d.room.sinks
            await d.say_locally(QUESTION)
            await until(lambda: d.requests() == 1)  # the device answers its own room as ever
            d.room.join("alice")
            await until(lambda: d.aside.aside)
            await d.say_locally(QUESTION)
            await asyncio.sleep(0.5)  # the local session would have asked by now (it took 0.2 s above)
            assert d.requests() == 1
            await d.room.speak("alice", QUESTION)
            await until(lambda: d.requests() == 2)
            await until(lambda: d.room.sink.loud_seconds() > 1.0)  # the answer went to the room
            assert d.bridge.snapshot()["user"] == "alice"
            d.room.leave("alice")
            await until(lambda: not d.aside.aside, within=3.0)
            await d.say_locally(QUESTION)
            await until(lambda: d.requests() == 3)

    asyncio.run(go())


def test_a_join_that_fails_for_good_fails_the_start_with_its_reason() -> None:
    async def go() -> None:
        async with Device("agent") as d:
            d.room.fail_connect.append(
                BridgeError("the LiveKit server refused the API key; check LIVEKIT_API_KEY", retryable=False)
            )
            with pytest.raises(BridgeError, match="refused the API key"):
                await d.bridge.start()
            assert not d.aside.aside

    asyncio.run(go())


def test_a_call_puts_the_microphone_and_speaker_in_the_room_and_hanging_up_takes_them_back() -> None:
    async def go() -> None:
        async with Device("relay", user_grace=30.0) as d:
            await d.bridge.start()
            assert not d.room.connects  # relay mode joins on a call, not at start
            assert await d.bridge.start_call("garage") == "Calling garage."
            await until(lambda: d.aside.tap is not None)
            assert d.rooms == ["garage"] and d.room.sink.sample_rate == 16000
            await d.say_locally(QUESTION)
            await until(lambda: d.room.sink.loud_seconds() > 0.8)  # the room hears the microphone
            assert d.requests() == 0  # and the local assistant did not answer it
            d.room.join("grandma")
            await until(lambda: "grandma" in d.room.tracks)
            before = len(d.speaker.audio.data)
            await d.room.speak("grandma", QUESTION)
            played = d.speaker.audio.data[before:]
            assert np.count_nonzero(np.abs(played) > 1000) > 0.5 * d.speaker.sample_rate  # heard on the speaker
            assert d.bridge.snapshot()["in_call"] and d.bridge.snapshot()["remote"] == "grandma"
            assert await d.bridge.hang_up() == CALL_ENDED
            assert not d.aside.aside and not d.room.connected
            assert await d.bridge.hang_up() == NO_CALL
            await d.say_locally(QUESTION)
            await until(lambda: d.requests() == 1)  # the local assistant is back

    asyncio.run(go())


def test_a_call_ends_by_itself_when_the_room_stays_empty_and_says_so() -> None:
    async def go() -> None:
        async with Device("relay", user_grace=0.3) as d:
            await d.bridge.start_call(None)
            assert d.rooms == ["kitchen"]  # the configured room
            await until(lambda: d.aside.aside)
            await until(lambda: not d.aside.aside, within=3.0)
            await until(lambda: CALL_ENDED in d.stages["tts"].spoken)
            assert not d.room.connected

    asyncio.run(go())
