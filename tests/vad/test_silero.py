"""VAD on REAL speech (pocketsphinx recordings) with silences around it."""

import numpy as np
import pytest

from appliance.audio.frame import AudioFrame
from appliance.errors import ConfigError
from appliance.vad.base import VADEventType, VADSettings
from appliance.vad.silero import SileroVAD
from tests.helpers import join, run, silence


def speech_bounds(audio: AudioFrame) -> tuple[float, float]:
    """Where the talking is, by level: first and last 32 ms window within 25 dB of the loudest."""
    win = 512
    n = audio.data.size // win
    levels = np.array([AudioFrame(audio.data[i * win : (i + 1) * win], 16000).rms_dbfs() for i in range(n)])
    loud = np.flatnonzero(levels > levels.max() - 25)
    return loud[0] * win / 16000, (loud[-1] + 1) * win / 16000


async def collect(vad: SileroVAD, audio: AudioFrame, paused: bool = False) -> list:
    skip = {VADEventType.INFERENCE_DONE} | (set() if paused else {VADEventType.SPEECH_PAUSED})
    stream = vad.stream()
    for block in audio.split(320):  # 20 ms, like a microphone
        stream.push_frame(block)
    stream.end_input()
    events = [e async for e in stream if e.type not in skip]
    await stream.aclose()
    return events


def test_two_utterances_have_boundaries_where_the_speech_is(vad: SileroVAD, go_forward, go_somewhere) -> None:
    clip = join(silence(1.0), go_forward.data, silence(1.5), go_somewhere.data, silence(1.5))
    events = run(collect(vad, clip))
    kinds = [e.type for e in events]
    assert kinds == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH] * 2
    offsets = (1.0, 1.0 + go_forward.seconds + 1.5)
    for (_start, end), offset, audio in zip(
        [(events[0], events[1]), (events[2], events[3])], offsets, (go_forward, go_somewhere), strict=True
    ):
        s_true, e_true = speech_bounds(audio)
        assert abs(end.speech_start - (offset + s_true)) < 0.3
        # END comes after the configured silence, not before the speech is over
        assert end.timestamp >= offset + e_true + vad.settings.min_silence_duration - 0.1
        assert end.timestamp <= offset + e_true + vad.settings.min_silence_duration + 0.4
        assert end.speech_duration > 0.5 * (e_true - s_true)


def test_end_of_speech_carries_the_utterance_with_pre_roll(vad: SileroVAD, go_forward) -> None:
    clip = join(silence(1.0), go_forward.data, silence(1.0))
    end = next(e for e in run(collect(vad, clip)) if e.type is VADEventType.END_OF_SPEECH)
    utterance = end.frames[0]
    s_true, e_true = speech_bounds(go_forward)
    # padding before the detected start, and the whole spoken part inside
    assert utterance.seconds >= (e_true - s_true)
    padded_start = end.timestamp - utterance.seconds - (end.silence_duration - 0.2)
    assert padded_start <= end.speech_start - vad.settings.prefix_padding + 0.07  # one 32 ms window of slack


def test_pause_carries_the_audio_the_end_will_carry(vad: SileroVAD, go_forward) -> None:
    # Transcribing at the pause gives the same words as at the end, 0.3 s sooner.
    clip = join(silence(1.0), go_forward.data, silence(1.0))
    events = run(collect(vad, clip, paused=True))
    pauses = [e for e in events if e.type is VADEventType.SPEECH_PAUSED]
    end = next(e for e in events if e.type is VADEventType.END_OF_SPEECH)
    assert pauses, "no pause before the end"
    last = pauses[-1]
    assert end.timestamp - last.timestamp >= vad.settings.min_silence_duration - 0.2 - 0.04
    assert np.array_equal(last.frames[0].data, end.frames[0].data)


def test_silence_and_steady_noise_are_not_speech(vad: SileroVAD) -> None:
    rng = np.random.default_rng(1)
    noise = AudioFrame(rng.normal(0, 300, 16000 * 4).astype(np.int16), 16000)
    assert run(collect(vad, join(silence(4.0)))) == []
    assert run(collect(vad, noise)) == []


def test_input_ending_mid_utterance_still_closes_it(vad: SileroVAD, go_forward) -> None:
    clip = join(silence(0.5), go_forward.data[: go_forward.data.size // 2])
    kinds = [e.type for e in run(collect(vad, clip))]
    assert kinds == [VADEventType.START_OF_SPEECH, VADEventType.END_OF_SPEECH]


def test_out_of_range_threshold_is_rejected() -> None:
    with pytest.raises(ConfigError, match="threshold"):
        VADSettings(threshold=1.5)


def test_a_quiet_room_costs_no_inference_and_the_speech_in_it_is_found_the_same(vad: SileroVAD, go_forward) -> None:
    rng = np.random.default_rng(1)
    room = (rng.standard_normal(16000 * 3) * 30).astype(np.int16)  # about -61 dBFS: a quiet room
    audio = join(room, go_forward.data, room)

    def boundaries(floor: float) -> tuple[list[tuple[VADEventType, float]], int]:
        async def go() -> tuple[list[tuple[VADEventType, float]], int]:
            stream = vad.stream(VADSettings(energy_floor=floor))
            for block in audio.split(1600):
                stream.push_frame(block)
            stream.end_input()
            events = [
                (e.type, round(e.timestamp, 2)) async for e in stream if e.type is not VADEventType.INFERENCE_DONE
            ]
            await stream.aclose()
            return events, stream.skipped  # type: ignore[attr-defined]

        return run(go())

    gated, skipped = boundaries(-55.0)
    every, none_skipped = boundaries(-100.0)
    assert none_skipped == 0 and skipped >= 150  # most of the 6 s of room went without the model
    starts = [t for kind, t in gated if kind is VADEventType.START_OF_SPEECH]
    assert len(starts) == 1 and 3.0 < starts[0] < 4.0  # in the recording, not in the room
    assert [k for k, _ in gated] == [k for k, _ in every]
    for (_, a), (_, b) in zip(gated, every, strict=True):
        assert abs(a - b) <= 0.07  # the same boundaries, within two windows
