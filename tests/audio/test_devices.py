"""Microphone and speaker through sounddevice, against a real PulseAudio server with virtual devices.

The played clip is REAL recorded speech; the tone is synthetic.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import numpy as np
import pytest
import sounddevice as sd

from appliance.audio import devices, playback
from appliance.audio.capture import MicrophoneInput
from appliance.audio.devices import find_device, reopen
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.playback import SpeakerOutput
from appliance.errors import AudioDeviceError
from appliance.rig.sound_server import MicFeeder, MonitorRecorder
from appliance.utils.backoff import Backoff
from tests.helpers import join, run, silence


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


def test_after_a_long_outage_the_microphone_is_back_within_a_second_of_the_sound_server(pulse) -> None:
    """12 s without the sound server: the retry waits have grown to 8 s by then (the next try would come
    about 3 s after the server is back), but the server's socket taking connections again cuts the wait."""
    errors: list[AudioDeviceError | None] = []
    outage = 12.0
    back_at: list[float] = []
    resumed: list[float] = []
    feeders: list[MicFeeder] = []

    def come_back() -> None:
        time.sleep(outage)
        pulse.start()
        back_at.append(time.monotonic())
        feeders.append(MicFeeder(pulse.fifo).start())

    async def scenario() -> None:
        mic = MicrophoneInput("pulse", on_error=errors.append, stall_timeout=0.5)
        mic.open()
        feeders.append(MicFeeder(pulse.fifo).start())
        start = time.monotonic()
        returning: threading.Thread | None = None
        async for _frame in mic:
            if returning is None and time.monotonic() - start > 0.5:
                feeders.pop().stop()
                pulse.stop()  # the mic is read on: it stalls, reports, and retries with growing waits
                returning = threading.Thread(target=come_back, daemon=True)
                returning.start()
            elif back_at and errors and errors[-1] is None:
                resumed.append(time.monotonic() - back_at[0])  # the first frame after the reopen
                break
            if time.monotonic() - start > outage + 30:
                break
        await mic.aclose()
        if returning is not None:
            returning.join()

    try:
        run(scenario())
    finally:
        for feeder in feeders:
            feeder.stop()
    assert errors and isinstance(errors[0], AudioDeviceError) and errors[-1] is None, errors
    assert resumed, "the microphone was not reopened"
    assert resumed[0] < 1.5, f"the microphone came back {resumed[0]:.1f} s after the sound server"


def test_xruns_reported_by_the_device_callbacks_are_counted() -> None:
    mic = MicrophoneInput("pulse")
    speaker = SpeakerOutput("pulse", 22050)
    overflow, underflow = sd.CallbackFlags(), sd.CallbackFlags()
    overflow.input_overflow = True
    underflow.output_underflow = True
    block = np.zeros((512, 1), np.int16)
    for status in (overflow, sd.CallbackFlags(), overflow, underflow):
        mic._callback(block, 512, None, status)
        speaker._callback(block.copy(), 512, None, status)
    assert (mic.xruns, speaker.xruns) == (2, 1)


async def _ticking(work: asyncio.Future[bool]) -> tuple[bool, float]:
    """``work``'s result, and the longest the loop went without running another task meanwhile."""
    longest, last = 0.0, time.monotonic()
    while not work.done():
        await asyncio.sleep(0.01)
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    return await work, longest


def test_a_hung_device_open_neither_blocks_the_loop_nor_piles_up(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    calls: list[float] = []

    def hung_open() -> None:  # a sound server that does not answer for a second
        calls.append(time.monotonic())
        release.wait(5)

    async def scenario() -> tuple[bool, float]:
        threading.Timer(1.0, release.set).start()
        attempt = asyncio.ensure_future(reopen(hung_open, Backoff(0.05), "speaker", lambda: False, attempt_seconds=0.2))
        return await _ticking(attempt)

    with caplog.at_level(logging.WARNING, logger="appliance.audio.devices"):
        reopened, longest = run(scenario())
    release.set()
    assert reopened, "the open that ended late was not taken"
    assert longest < 0.1, f"the loop was blocked for {longest:.2f} s"
    assert len(calls) == 1, "a new attempt was started while the first one hung"
    assert any(r.getMessage() == "sound device open hung" for r in caplog.records), "the timeout was not counted"


def test_an_open_that_ends_after_the_owner_gave_up_is_closed_again() -> None:
    release = threading.Event()
    opened: list[str] = []

    def hung_open() -> None:
        release.wait(5)
        opened.append("stream")

    async def scenario() -> None:
        closed = False
        threading.Timer(0.6, release.set).start()
        task = asyncio.ensure_future(
            reopen(hung_open, Backoff(0.05), "microphone", lambda: closed, attempt_seconds=0.2, discard=opened.clear)
        )
        await asyncio.sleep(0.4)
        closed = True  # the owner closes while the open still hangs
        assert not await task
        await asyncio.sleep(0.5)

    run(scenario())
    release.set()
    assert opened == [], "the stream opened after the owner closed was left open"


def test_recovering_the_speaker_leaves_the_microphone_running(pulse, monkeypatch: pytest.MonkeyPatch) -> None:
    """The speaker's first reopen fails (a USB speaker still away), which sends it down the re-scan path: the
    re-scan must not terminate PortAudio under the microphone, which goes on without a gap or an error."""
    mic_errors: list[AudioDeviceError | None] = []
    speaker_errors: list[AudioDeviceError | None] = []
    rescans: list[bool] = []
    real_find, real_refresh = playback.find_device, devices.refresh_devices
    away = [True]

    def find_once_away(spec: devices.DeviceSpec, kind: devices.Kind) -> int:
        if away:
            away.pop()
            raise AudioDeviceError("speaker still away (test)")
        return real_find(spec, kind)

    def refresh() -> bool:
        rescans.append(real_refresh())
        return rescans[-1]

    async def scenario() -> list[float]:
        mic = MicrophoneInput("pulse", on_error=mic_errors.append, stall_timeout=1.0)
        mic.open()
        speaker = SpeakerOutput("pulse", 22050, on_error=speaker_errors.append)
        await speaker.start()
        monkeypatch.setattr(playback, "find_device", find_once_away)
        monkeypatch.setattr(devices, "refresh_devices", refresh)
        arrivals: list[float] = []
        recovered_at: float | None = None
        start = time.monotonic()
        async for _frame in mic:
            now = time.monotonic()
            arrivals.append(now)
            if len(arrivals) == 10:
                speaker._close_stream()  # the speaker is lost; its supervisor notices and reopens it
            if recovered_at is None and speaker_errors and speaker_errors[-1] is None:
                recovered_at = now
            if (recovered_at is not None and now - recovered_at > 1.0) or now - start > 15:
                break
        await mic.aclose()
        await speaker.aclose()
        return arrivals

    feeder = MicFeeder(pulse.fifo).start()
    try:
        arrivals = run(asyncio.wait_for(scenario(), 30))
    finally:
        feeder.stop()
    assert len(speaker_errors) == 2 and speaker_errors[-1] is None, f"the speaker did not recover: {speaker_errors}"
    assert not away and rescans, "the speaker's recovery did not take the re-scan path"
    assert mic_errors == [], f"the microphone failed while the speaker recovered: {mic_errors}"
    longest = float(np.max(np.diff(arrivals)))
    assert longest < 0.5, f"the microphone delivered nothing for {longest:.2f} s"
