"""One tool call end to end, by voice through the virtual sound card: the wake phrase and "what time is it"
are SYNTHETIC (Piper), played into the private PulseAudio server's microphone; the real models hear it, the
default model calls the registered ``get_time`` tool, and the reply at the speaker says the time it returned.
The device's own intents are off, so the question reaches the model."""

from __future__ import annotations

import asyncio
from typing import Any

from appliance.agent import Agent, AgentSession, SessionOptions, function_tool
from appliance.agent import events as ev
from appliance.audio.capture import MicrophoneInput
from appliance.audio.playback import SpeakerOutput
from appliance.llm.base import Role
from appliance.rig.sound_server import MicFeeder, MonitorRecorder, VirtualSoundServer
from tests.e2e.test_daemon import wake_then
from tests.helpers import run

TOLD = "It is 7:42 in the evening."


@function_tool
async def get_time() -> str:
    """The current local time."""
    return TOLD


def test_what_time_is_it_by_voice_is_answered_with_what_the_tool_returned(
    pulse: VirtualSoundServer,
    mic: MicFeeder,
    speaker: MonitorRecorder,
    synth: Any,
    jarvis: Any,
    vad: Any,
    stt: Any,
    llm: Any,
    tts: Any,
) -> None:
    async def go() -> tuple[list[str], str, float | None]:
        options = SessionOptions(earcons=False, listening_timeout=4.0)
        session = AgentSession(wake=jarvis, vad=vad, stt=stt, llm=llm, tts=tts, options=options)
        called: list[str] = []
        session.on(ev.EventType.FUNCTION_TOOLS_EXECUTED, lambda e: called.extend(c.name for c in e.function_calls))
        microphone = MicrophoneInput("pulse")
        out = SpeakerOutput("pulse", tts.sample_rate)
        await out.start()
        microphone.open()
        await session.start(Agent(tools=[get_time]), audio_input=microphone, audio_output=out)
        try:
            audio, speech_end = wake_then(synth, synth("What time is it?"))
            clip = mic.play(audio)
            for _ in range(600):
                replies = [m for m in session.chat_ctx.messages() if m.role is Role.ASSISTANT]
                if replies and session.state.value in ("listening", "waiting_for_wake"):
                    break
                await asyncio.sleep(0.1)
            heard_at = speaker.first_sound((clip.started or 0) + speech_end)
        finally:
            await session.aclose()
            await microphone.aclose()
            await out.aclose()
        reply = replies[-1].content if replies else ""
        return called, reply, heard_at

    called, reply, heard_at = run(go())
    assert called == ["get_time"]
    assert "7:42" in reply, reply
    assert heard_at is not None, "nothing at the speaker"
