"""Against a real LiveKit server, when one is given: ``LIVEKIT_URL``, ``LIVEKIT_API_KEY`` and
``LIVEKIT_API_SECRET`` (``livekit-server --dev`` gives ws://127.0.0.1:7880, devkey and secret). Skipped, and
said so in the summary, otherwise.

A second participant (the "phone") joins the same room, publishes REAL recorded speech ("go forward ten
meters") as its microphone, and must get the device's spoken reply and the captions of both sides.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import numpy as np
import pytest

from appliance.agent import Agent, AgentSession, SessionOptions
from appliance.audio.frame import AudioFrame
from appliance.bridge.livekit_audio import LiveKitSink, TrackStream
from appliance.bridge.livekit_room import LiveKitRoom
from appliance.bridge.room_agent import RoomAgent
from appliance.config.livekit import LiveKitConfig
from tests.bridge.fake_room import until
from tests.helpers import silence

SERVER = {key: os.environ.get(key, "") for key in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET")}

pytestmark = pytest.mark.skipif(
    not all(SERVER.values()),
    reason="no LiveKit server: set LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET (livekit-server --dev)",
)


def test_a_phone_in_the_room_asks_and_hears_the_answer_with_captions(vad, stt, llm, tts, go_forward) -> None:  # type: ignore[no-untyped-def]
    from livekit import api, rtc

    room_name = f"appliance-test-{uuid.uuid4().hex[:8]}"
    config = LiveKitConfig(
        mode="agent",
        url=SERVER["LIVEKIT_URL"],
        room=room_name,
        identity="appliance-test",
        api_key=SERVER["LIVEKIT_API_KEY"],
        api_secret=SERVER["LIVEKIT_API_SECRET"],
        reconnect_for=10.0,
    )
    options = SessionOptions(require_wake_word=False, earcons=False)

    async def go() -> None:
        bridge = RoomAgent(
            LiveKitRoom(config),
            config,
            lambda: AgentSession(vad=vad, stt=stt, llm=llm, tts=tts, options=options),
            lambda: Agent("Answer in one short sentence."),
        )
        served = asyncio.create_task(bridge.run())
        phone = rtc.Room()
        captions: list[tuple[str, dict[str, str]]] = []
        reader_tasks: set[asyncio.Task[None]] = set()

        async def read_caption(reader: rtc.TextStreamReader) -> None:
            captions.append((await reader.read_all(), dict(reader.info.attributes)))

        def on_caption(reader: rtc.TextStreamReader, identity: str) -> None:
            task = asyncio.create_task(read_caption(reader))
            reader_tasks.add(task)
            task.add_done_callback(reader_tasks.discard)

        phone.register_text_stream_handler("lk.transcription", on_caption)
        heard: list[np.ndarray] = []
        device_track: list[rtc.Track] = []
        phone.on("track_subscribed", lambda track, pub, participant: device_track.append(track))
        try:
            await asyncio.wait_for(bridge.joined.wait(), 30)
            token = (
                api.AccessToken(SERVER["LIVEKIT_API_KEY"], SERVER["LIVEKIT_API_SECRET"])
                .with_identity("phone")
                .with_grants(api.VideoGrants(room_join=True, room=room_name))
                .to_jwt()
            )
            await asyncio.wait_for(phone.connect(SERVER["LIVEKIT_URL"], token), 30)
            mic = LiveKitSink(16000)
            await phone.local_participant.publish_track(
                mic.track("phone-mic"), rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
            )
            await until(lambda: bridge.user == "phone" and device_track, within=30)
            ears = TrackStream(device_track[0])

            async def listen() -> None:
                async for frame in ears:
                    heard.append(frame.data)

            listening = asyncio.create_task(listen())
            question = AudioFrame(np.concatenate([go_forward.data, silence(1.0)]), go_forward.sample_rate)
            for frame in question.split(question.sample_rate // 100):
                await mic.capture_frame(frame)
            await until(lambda: sum(1 for d in heard if np.abs(d).max() > 1000) * 0.02 > 0.5, within=60)
            await until(lambda: len(captions) >= 2, within=30)
            assert any("forward" in text.lower() for text, _ in captions)
            assert any(a.get("lk.transcription_final") == "true" for _, a in captions)
            attributes = phone.remote_participants["appliance-test"].attributes
            assert attributes.get("lk.agent.state") in ("listening", "thinking", "speaking")
            listening.cancel()
            await ears.aclose()
            await mic.aclose()
        finally:
            await phone.disconnect()
            served.cancel()
            await asyncio.gather(served, return_exceptions=True)

    asyncio.run(go())
