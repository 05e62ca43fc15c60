"""The speaker resting while nothing plays, against a real PulseAudio server with a virtual speaker.

The tone is synthetic.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from appliance.audio.frame import AudioFrame
from appliance.audio.io import BLOCK_SECONDS
from appliance.audio.playback import STALL_TIMEOUT, SpeakerOutput
from appliance.errors import AudioDeviceError
from appliance.rig.sound_server import MonitorRecorder, VirtualSoundServer
from tests.helpers import run

REST_AFTER = 0.5


def tone(seconds: float, rate: int = 22050) -> AudioFrame:
    t = np.arange(int(seconds * rate)) / rate
    return AudioFrame.from_float32((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)


async def until(condition: Callable[[], bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.fixture()
def recorder(pulse: VirtualSoundServer) -> Iterator[MonitorRecorder]:
    monitor = MonitorRecorder(pulse.env)
    time.sleep(1.0)  # parec takes a moment to deliver its first blocks
    yield monitor
    monitor.stop()


def test_a_resting_speaker_is_not_a_failed_one_and_plays_again_at_once_and_whole(
    pulse: VirtualSoundServer, recorder: MonitorRecorder
) -> None:
    errors: list[AudioDeviceError | None] = []

    async def scenario() -> tuple[float, float, float | None, bool]:
        speaker = SpeakerOutput("pulse", 22050, on_error=errors.append, rest_after=REST_AFTER)
        blocks: list[tuple[bool, bool]] = []  # per block handed to the device: it sounds, the device ran dry before it
        speaker.tap = lambda samples, _rate, _heard_at, ran_dry: blocks.append((bool(samples.any()), ran_dry))
        await speaker.start()
        assert await until(lambda: speaker.resting, REST_AFTER + 2.0), "the speaker never rested"
        await asyncio.sleep(STALL_TIMEOUT + 1.0)  # longer than a stall: no callbacks, and still no failure
        assert speaker.resting and errors == []
        pushed = time.time()
        await speaker.capture_frame(tone(0.4))
        finished = await asyncio.wait_for(speaker.wait_for_playout(speaker.flush()), 3)
        assert not finished.interrupted and finished.playback_position == pytest.approx(0.4, abs=0.01)
        rests_again = await until(lambda: speaker.resting, REST_AFTER + 2.0)
        latency = speaker.latency
        # the tone plays whole: the device never ran dry between two blocks of it. (Running dry in the
        # silence around it is not heard; a loaded box may do that, and the speaker counts it in ``xruns``.)
        gaps = sum(1 for (before, _), (now, dry) in itertools.pairwise(blocks) if before and now and dry)
        assert gaps == 0, f"the device ran dry {gaps} times within the tone ({speaker.xruns} in all)"
        await speaker.aclose()
        return pushed, latency, finished.started_at, rests_again

    pushed, latency, started_at, rests_again = run(scenario())
    time.sleep(0.3)
    first = recorder.first_sound(pushed - 0.1)
    assert first is not None, "the tone never played"
    # no later than behind a running stream (one block and the device's buffer); the monitor adds 10-20 ms
    assert first - pushed < BLOCK_SECONDS + latency + 0.03, f"first sound {first - pushed:.3f} s after the push"
    heard = sum(0.02 for _, level in recorder.levels(first, first + 0.8) if level > -45.0)
    assert heard >= 0.36, f"only {heard:.2f} s of the 0.4 s tone was heard"
    assert started_at is not None and abs(started_at - first) < 0.05
    assert rests_again and errors == []


def test_held_audio_keeps_the_speaker_playing_and_wake_opens_a_resting_one(pulse: VirtualSoundServer) -> None:
    async def scenario() -> None:
        speaker = SpeakerOutput("pulse", 22050, rest_after=REST_AFTER)
        await speaker.start()
        speaker.pause()  # a talk-over: the reply is held, not dropped
        await speaker.capture_frame(tone(0.3))
        segment = speaker.flush()
        await asyncio.sleep(REST_AFTER + 1.5)
        assert not speaker.resting, "the speaker rested under held audio"
        speaker.resume()
        finished = await asyncio.wait_for(speaker.wait_for_playout(segment), 3)
        assert not finished.interrupted and finished.playback_position == pytest.approx(0.3, abs=0.01)
        assert await until(lambda: speaker.resting, REST_AFTER + 2.0)
        speaker.wake()  # the user started speaking: a reply may follow
        assert await until(lambda: not speaker.resting and speaker._healthy(), 1.0), "wake() did not open it"
        await asyncio.sleep(REST_AFTER * 0.6)
        assert not speaker.resting, "it rested again before rest_after"
        await speaker.aclose()

    run(scenario())


def test_a_resting_speaker_plays_on_a_sound_server_that_restarted_meanwhile(
    pulse: VirtualSoundServer,
) -> None:
    errors: list[AudioDeviceError | None] = []

    async def scenario() -> bool:
        speaker = SpeakerOutput("pulse", 22050, on_error=errors.append, rest_after=REST_AFTER)
        await speaker.start()
        assert await until(lambda: speaker.resting, REST_AFTER + 2.0)
        pulse.stop()
        pulse.start()
        await speaker.capture_frame(tone(0.3))
        finished = await asyncio.wait_for(speaker.wait_for_playout(speaker.flush()), 5)
        await speaker.aclose()
        return not finished.interrupted and finished.playback_position > 0.29

    assert run(scenario()), "the tone did not play through the restarted server"
    assert errors == []
