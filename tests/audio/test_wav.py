from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from appliance.audio.wav import read_audio, read_audio_bytes, write_wav
from appliance.errors import AudioError


def test_reads_any_rate_and_channels_as_16k_mono(tmp_path: Path) -> None:
    path = tmp_path / "stereo44k.wav"
    t = np.arange(44100) / 44100
    sf.write(path, np.stack([np.sin(2 * np.pi * 200 * t)] * 2, axis=1) * 0.3, 44100, subtype="PCM_16")
    frame = read_audio(path)
    assert (frame.sample_rate, frame.num_channels) == (16000, 1)
    assert abs(frame.seconds - 1.0) < 0.01


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="no such file"):
        read_audio(tmp_path / "nope.wav")


def test_not_audio_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is not a wave file")
    with pytest.raises(AudioError, match="not a readable audio file"):
        read_audio(path)


def test_empty_audio_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1)), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match="no audio samples"):
        read_audio(path)


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    from appliance.audio.frame import AudioFrame

    frame = AudioFrame((np.arange(2205) % 100 * 100).astype(np.int16), 22050)
    write_wav(tmp_path / "x.wav", frame)
    back = read_audio(tmp_path / "x.wav", rate=None)
    assert back.sample_rate == 22050
    assert np.array_equal(back.data, frame.data)


@pytest.mark.parametrize("subtype", ["FLOAT", "DOUBLE", "PCM_24", "PCM_32", "PCM_U8", "PCM_16"])
def test_every_sample_format_reads_as_the_same_real_speech(stt, go_forward, tmp_path: Path, subtype: str) -> None:
    """REAL speech ("go forward ten meters") written in each format reads back at its level and is understood."""
    from appliance.bench import normalize_words

    path = tmp_path / f"{subtype}.wav"
    sf.write(path, go_forward.to_float32(), 16000, subtype=subtype)
    frame = read_audio(path)
    original = go_forward.data.astype(np.float64)
    error = np.abs(frame.data.astype(np.float64) - original).max()
    assert error <= (256 if subtype == "PCM_U8" else 1), f"{subtype}: samples off by {error}"
    assert "go forward" in normalize_words(stt.recognize_sync(frame)[0].text)
    assert read_audio_bytes(path.read_bytes(), path.name).data.tolist() == frame.data.tolist()


def test_a_wav_cut_short_is_read_with_a_warning_naming_the_file(
    go_forward, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    whole = tmp_path / "whole.wav"
    write_wav(whole, go_forward)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:-16000])  # the header still promises the whole recording
    with caplog.at_level("WARNING", logger="appliance.audio.wav"):
        frame = read_audio(cut)
    assert frame.samples_per_channel == go_forward.samples_per_channel - 8000
    warned = [r.getMessage() for r in caplog.records if "cut short" in r.getMessage()]
    assert warned and str(cut) in warned[0] and "16000 more bytes" in warned[0]
    caplog.clear()
    with caplog.at_level("WARNING", logger="appliance.audio.wav"):
        read_audio(whole)
    assert not caplog.records  # a whole file says nothing
