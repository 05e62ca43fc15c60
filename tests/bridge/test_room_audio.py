"""The room audio adapter on the real LiveKit SDK, with no server: ``rtc.AudioSource`` -> ``LocalAudioTrack`` ->
``AudioStream`` loops audio locally, through the SDK's own queue, pacing and resampler.

Audio here is a SYNTHETIC tone, except where a test says it uses real recorded speech.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.bridge.audio import RoomAudioInput, RoomAudioOutput
from appliance.bridge.livekit_audio import LiveKitSink, TrackStream
from tests.bridge.fake_room import until

pytest.importorskip("livekit.rtc")

TONE_RATE = 22050
"""The voice's rate (Piper's): the output resamples it to the published 48 kHz, the stream to 16 kHz."""


def tone(seconds: float, freq: float = 440.0, rate: int = TONE_RATE) -> AudioFrame:
    t = np.arange(int(seconds * rate)) / rate
    return AudioFrame((np.sin(2 * np.pi * freq * t) * 12000).astype(np.int16), rate)


async def collect(source: RoomAudioInput, seconds: float) -> list[tuple[float, np.ndarray]]:
    """What the input hands out for ``seconds``, with the time each frame arrived."""
    got: list[tuple[float, np.ndarray]] = []
    deadline = time.monotonic() + seconds
    frames = aiter(source)
    while time.monotonic() < deadline:
        frame = await asyncio.wait_for(anext(frames), 1.0)
        got.append((time.monotonic(), frame.data))
    return got


def loud(frames: list[tuple[float, np.ndarray]]) -> list[tuple[float, np.ndarray]]:
    return [(t, d) for t, d in frames if np.abs(d).max() > 1000]


@pytest.fixture
def loop_pair():  # type: ignore[no-untyped-def]
    """The agent's output published into a local track, and that track heard back through the input."""

    async def make() -> tuple[RoomAudioOutput, RoomAudioInput, LiveKitSink]:
        sink = LiveKitSink(48000)
        output = RoomAudioOutput(sink, 48000)
        heard = RoomAudioInput()
        await heard.attach("loop", TrackStream(sink.track("agent-voice")))
        return output, heard, sink

    return make


def test_a_reply_goes_out_paced_resampled_and_comes_back_whole(loop_pair) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        output, heard, sink = await loop_pair()
        try:
            started = time.monotonic()
            await output.capture_frame(tone(1.0))
            segment = output.flush()
            frames = await collect(heard, 1.6)
            finished = await asyncio.wait_for(output.wait_for_playout(segment), 2.0)
            assert not finished.interrupted
            assert abs(finished.playback_position - 1.0) < 0.02
            sound = loud(frames)
            assert all(d.size == SAMPLE_RATE // 50 for _, d in frames)  # 20 ms frames at 16 kHz
            assert 0.9 <= len(sound) * 0.02 <= 1.1  # a second of tone, no more, no less
            # real time: the last of it arrived about a second after the first, not in a burst
            assert sound[-1][0] - sound[0][0] > 0.85
            assert sound[0][0] - started < 0.3
            data = np.concatenate([d for _, d in sound]).astype(np.float32)
            spectrum = np.abs(np.fft.rfft(data))
            peak = np.argmax(spectrum) * SAMPLE_RATE / data.size
            assert abs(peak - 440.0) < 5.0
            assert output.frames_sent >= 100
        finally:
            await output.aclose()
            await heard.aclose()
            await sink.aclose()

    asyncio.run(go())


def test_clear_buffer_silences_the_track_within_a_frame_and_ends_the_segment(loop_pair) -> None:  # type: ignore[no-untyped-def]
    async def go() -> None:
        output, heard, sink = await loop_pair()
        try:
            await output.capture_frame(tone(3.0))
            segment = output.flush()
            frames = aiter(heard)
            first_loud = None
            while first_loud is None:
                frame = await asyncio.wait_for(anext(frames), 1.0)
                if np.abs(frame.data).max() > 1000:
                    first_loud = time.monotonic()
            while time.monotonic() - first_loud < 0.5:
                await asyncio.wait_for(anext(frames), 1.0)
            output.clear_buffer()
            cleared = time.monotonic()
            finished = await asyncio.wait_for(output.wait_for_playout(segment), 1.0)
            assert finished.interrupted
            assert 0.4 < finished.playback_position < 1.0
            after: list[tuple[float, np.ndarray]] = []
            while time.monotonic() - cleared < 0.5:
                frame = await asyncio.wait_for(anext(frames), 1.0)
                after.append((time.monotonic(), frame.data))
            still = loud(after)
            # what was already in flight, at most one 10 ms frame and the stream's own 20 ms frame
            assert not still or still[-1][0] - cleared < 0.06, [round(t - cleared, 3) for t, _ in still]
        finally:
            await output.aclose()
            await heard.aclose()
            await sink.aclose()

    asyncio.run(go())


def test_the_input_hands_out_silence_at_the_frame_pace_while_no_track_is_attached() -> None:
    async def go() -> None:
        heard = RoomAudioInput()
        started = time.monotonic()
        frames = await collect(heard, 0.5)
        assert 20 <= len(frames) <= 27  # 25 frames of 20 ms, give or take the loop's jitter
        assert all(not d.any() for _, d in frames)
        assert time.monotonic() - started < 0.7
        await heard.aclose()

    asyncio.run(go())


async def speak_into(sink: LiveKitSink, audio: AudioFrame) -> None:
    """A room user says ``audio``: 10 ms frames into their published source, paced by the source itself."""
    for frame in audio.split(audio.sample_rate // 100):
        await sink.capture_frame(frame)


async def listen(heard: RoomAudioInput, into: list[tuple[float, np.ndarray]]) -> None:
    async for frame in heard:
        into.append((time.monotonic(), frame.data))


def test_the_agent_over_the_sdk_loop_answers_a_spoken_question_and_a_talk_over_silences_it(
    vad, stt, llm, tts, go_forward
) -> None:  # type: ignore[no-untyped-def]
    """REAL recorded speech ("go forward ten meters") through the user's published track; the reply comes
    back through the agent's; then a SYNTHETIC (Piper) story is talked over with the same words."""
    from appliance.agent import Agent, AgentSession, SessionOptions
    from appliance.agent import events as ev
    from appliance.llm.base import ChatMessage, Role
    from tests.helpers import silence

    story = (
        "Once upon a time, a small dragon lived in a castle on a hill. Every morning it counted the towers, "
        "and every evening it counted the stars. One day it found a door it had never seen before."
    )

    async def go() -> None:
        user_voice, agent_voice = LiveKitSink(16000), LiveKitSink(48000)
        agent_in, user_ears = RoomAudioInput(), RoomAudioInput()
        await agent_in.attach("user", TrackStream(user_voice.track("user-mic")))
        await user_ears.attach("agent", TrackStream(agent_voice.track("agent-voice")))
        output = RoomAudioOutput(agent_voice, 48000)
        session = AgentSession(
            vad=vad, stt=stt, llm=llm, tts=tts, options=SessionOptions(require_wake_word=False, earcons=False)
        )
        finals: list[str] = []
        session.on(ev.EventType.USER_INPUT_TRANSCRIBED, lambda e: finals.append(e.transcript) if e.is_final else None)
        heard: list[tuple[float, np.ndarray]] = []
        listener = asyncio.create_task(listen(user_ears, heard))
        await session.start(Agent("Answer in one short sentence."), audio_input=agent_in, audio_output=output)
        try:
            question = AudioFrame(np.concatenate([go_forward.data, silence(0.5)]), SAMPLE_RATE)
            await speak_into(user_voice, question)
            asked = time.monotonic()
            await until(
                lambda: [i for i in session.chat_ctx.items if isinstance(i, ChatMessage) and i.role is Role.ASSISTANT],
                within=60,
            )
            assert "forward" in finals[0].lower() and "meters" in finals[0].lower()
            replied = loud([(t, d) for t, d in heard if t > asked])
            assert len(replied) * 0.02 > 0.5  # the spoken reply reached the user's side of the room

            handle = session.say(story)
            await until(lambda: [1 for t, _ in loud(heard) if t > asked + len(replied) * 0.02 + 1.5], within=20)
            talk_over = time.monotonic()
            await speak_into(user_voice, question)
            spoke_until = time.monotonic()  # the talk-over has been said (the source paced it)
            await asyncio.wait_for(handle.wait_for_playout(), 10)
            assert handle.interrupted
            story_over = loud([(t, d) for t, d in heard if talk_over < t < spoke_until])
            assert story_over, "the story was not playing when the user talked over it"
            # silent while the user still speaks: half a second of speech counts, then one frame and the loop
            assert story_over[-1][0] - talk_over < 1.5
            assert spoke_until - talk_over > 2.5
        finally:
            await session.aclose()
            await cancel(listener)
            for closable in (output, agent_in, user_ears, user_voice, agent_voice):
                await closable.aclose()

    asyncio.run(go())


async def cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
