"""Microphone and speaker through sounddevice, against a real PulseAudio server with virtual devices.

The played clip is REAL recorded speech; the tone is synthetic.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator

import numpy as np
import pytest

from appliance.audio.capture import MicrophoneInput
from appliance.audio.devices import find_device, refresh_devices
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.playback import SpeakerOutput
from appliance.rig.sound_server import MicFeeder, MonitorRecorder, VirtualSoundServer
from appliance.errors import AudioDeviceError
from tests.helpers import join, run, silence


@pytest.fixture(scope="module")
def pulse(sound_server: VirtualSoundServer) -> Iterator[VirtualSoundServer]:
    """This process talks to the private server (PortAudio's ALSA 'pulse' device reads PULSE_SERVER)."""
    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER", "XDG_RUNTIME_DIR")}
    os.environ["PULSE_SERVER"] = sound_server.env["PULSE_SERVER"]
    os.environ["XDG_RUNTIME_DIR"] = sound_server.env["XDG_RUNTIME_DIR"]
    refresh_devices()
    yield sound_server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def tone(seconds: float, rate: int = 22050) -> AudioFrame:
    t = np.arange(int(seconds * rate)) / rate
    return AudioFrame.from_float32((0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), rate)


def test_an_unknown_device_names_the_ones_there_are(pulse) -> None:
    with pytest.raises(AudioDeviceError, match=r"no input sound device matches 'usb-mic-9'; set .* 'pulse'"):
        find_device("usb-mic-9", "input")


@pytest.mark.parametrize("rate", [48000, 16000])
def test_microphone_delivers_16k_frames_of_what_was_said(pulse, go_forward, rate: int) -> None:
    feeder = MicFeeder(pulse.fifo).start()

    async def capture() -> AudioFrame:
        mic = MicrophoneInput("pulse", sample_rate=rate)
        mic.open()
        got: list[np.ndarray] = []
        clip = feeder.play(join(silence(0.3), go_forward.data, silence(0.5)))
        async for frame in mic:
            assert frame.sample_rate == SAMPLE_RATE and frame.num_channels == 1
            got.append(frame.data)
            if clip.done.is_set() and sum(g.size for g in got) > 3.0 * SAMPLE_RATE:
                break
        await mic.aclose()
        return AudioFrame(np.concatenate(got), SAMPLE_RATE)

    try:
        heard = run(capture())
    finally:
        feeder.stop()
    assert heard.seconds >= 3.0
    assert heard.rms_dbfs() > go_forward.rms_dbfs() - 10  # the speech came through, not silence


def test_clear_buffer_silences_the_speaker_within_a_block_plus_device_latency(pulse) -> None:
    recorder = MonitorRecorder(pulse.env)

    async def play_and_cut() -> tuple[float, float]:
        speaker = SpeakerOutput("pulse", 22050)
        await speaker.start()
        await speaker.capture_frame(tone(3.0))
        segment = speaker.flush()
        await asyncio.sleep(1.0)
        cut = time.time()
        speaker.clear_buffer()
        finished = await asyncio.wait_for(speaker.wait_for_playout(segment), 2)
        await asyncio.sleep(0.8)
        await speaker.aclose()
        assert finished.interrupted and 0.7 < finished.playback_position < 1.3
        return cut, speaker.latency

    try:
        cut, latency = run(play_and_cut())
        time.sleep(0.2)
        before = recorder.first_sound(cut - 0.6)
        silent = recorder.first_silence(cut - 0.3, hold=0.3)
    finally:
        recorder.stop()
    assert before is not None and before < cut, "the tone never played"
    assert silent is not None
    # one 20 ms block, the device's buffer, and the monitor's own 10-20 ms
    assert silent - cut < 0.02 + latency + 0.06, f"silent {silent - cut:.3f} s after the cut"


def test_a_microphone_that_goes_away_is_reported_and_resumes_when_it_is_back(pulse) -> None:
    errors: list[AudioDeviceError | None] = []

    async def scenario() -> int:
        mic = MicrophoneInput("pulse", on_error=errors.append, stall_timeout=0.5)
        mic.open()
        frames_after = 0
        feeder = MicFeeder(pulse.fifo).start()
        restarted = False
        start = time.monotonic()
        async for _frame in mic:
            if not restarted and time.monotonic() - start > 0.5:
                restarted = True
                pulse.stop()  # the sound server goes away...
                await asyncio.sleep(1.5)
                pulse.start()  # ...and comes back
                feeder.stop()
                feeder = MicFeeder(pulse.fifo).start()
            elif restarted and errors and errors[-1] is None:
                frames_after += 1
                if frames_after > 25:
                    break
            if time.monotonic() - start > 40:
                break
        feeder.stop()
        await mic.aclose()
        return frames_after

    frames_after = run(scenario())
    assert errors and isinstance(errors[0], AudioDeviceError)
    assert "retrying" in str(errors[0])
    assert errors[-1] is None, "the microphone was not reopened"
    assert frames_after > 25
