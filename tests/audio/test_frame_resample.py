import numpy as np
import pytest

from appliance.audio.frame import AudioFrame, merge_frames
from appliance.audio.resample import Resampler, resample


def tone(freq: float, rate: int, seconds: float, channels: int = 1) -> AudioFrame:
    t = np.arange(int(rate * seconds)) / rate
    mono = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
    return AudioFrame(np.repeat(mono, channels), rate, channels)


def peak_hz(frame: AudioFrame) -> float:
    spectrum = np.abs(np.fft.rfft(frame.to_float32()))
    return float(np.argmax(spectrum) * frame.sample_rate / frame.samples_per_channel)


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_resample_to_16k_keeps_pitch_and_duration(rate: int) -> None:
    out = resample(tone(440, rate, 1.0), 16000)
    assert out.sample_rate == 16000
    assert abs(out.seconds - 1.0) < 0.002
    assert abs(peak_hz(out) - 440) < 2


def test_resample_removes_content_above_the_new_nyquist() -> None:
    # A 7 kHz tone cannot exist at 8 kHz sampling: a real resampler filters it, linear interpolation aliases it.
    out = resample(tone(7000, 48000, 1.0), 8000)
    assert out.rms_dbfs() < -40


def test_stereo_is_mixed_to_mono() -> None:
    out = resample(tone(440, 44100, 0.5, channels=2), 16000)
    assert out.num_channels == 1
    assert out.rms_dbfs() > -10


def test_streaming_resampler_matches_whole_signal() -> None:
    src = tone(300, 22050, 1.0)
    r = Resampler(22050, 48000)
    streamed = np.concatenate([r.push(block).data for block in src.split(441)])
    whole = resample(src, 48000).data
    assert 0 <= whole.size - streamed.size < 0.05 * 48000  # what the filter still holds at the end (~35 ms)
    n = min(streamed.size, whole.size)
    assert np.max(np.abs(streamed[:n].astype(int) - whole[:n].astype(int))) < 200


@pytest.mark.parametrize("rate", [22050, 48000])
def test_silence_stays_silence(rate: int) -> None:
    """No dither: a silent speaker's audio, resampled for the echo canceller, must still read as silence."""
    silence = AudioFrame(np.zeros(rate, np.int16), rate)
    r = Resampler(rate, 16000)
    assert not np.concatenate([r.push(block).data for block in silence.split(rate // 100)]).any()
    assert not resample(silence, 16000).data.any()


def test_frame_rejects_wrong_dtype_and_odd_channels() -> None:
    with pytest.raises(ValueError):
        AudioFrame(np.zeros(10, np.float32), 16000)
    with pytest.raises(ValueError):
        AudioFrame(np.zeros(11, np.int16), 16000, 2)


def test_seconds_and_merge() -> None:
    a = AudioFrame(np.zeros(8000, np.int16), 16000)
    assert a.seconds == 0.5
    assert merge_frames([a, a]).seconds == 1.0
