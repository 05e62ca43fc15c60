"""STT on REAL recordings with reference transcripts (pocketsphinx-testdata)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from appliance.audio.frame import AudioFrame
from appliance.audio.wav import read_audio
from appliance.bench import normalize_words, word_error_rate
from appliance.errors import AudioError
from appliance.stt.whispercpp import FULL_AUDIO_CTX, WhisperCppSTT, WhisperSettings
from tests.helpers import run

WER_BOUND = 0.08
"""Word error rate bound on the LibriVox clips (tiny.en measures about 4 % here)."""


def transcribe_all(stt: WhisperCppSTT, clips) -> list[str]:
    return [stt.recognize_sync(audio)[0].text for audio, _ in clips]


def test_word_error_rate_on_librivox_is_within_bound(stt: WhisperCppSTT, librivox) -> None:
    wer = word_error_rate([ref for _, ref in librivox], transcribe_all(stt, librivox))
    assert wer <= WER_BOUND


def test_encoder_sized_to_the_utterance_keeps_accuracy(stt: WhisperCppSTT, models, librivox) -> None:
    full = WhisperCppSTT(models.path("whisper-tiny.en"), WhisperSettings(trim_audio_ctx=False))
    try:
        refs = [ref for _, ref in librivox]
        wer_full = word_error_rate(refs, transcribe_all(full, librivox))
        wer_trim = word_error_rate(refs, transcribe_all(stt, librivox))
    finally:
        full.close()
    assert wer_trim <= wer_full + 0.02
    _, metrics = stt.recognize_sync(librivox[1][0])
    assert metrics.audio_ctx < FULL_AUDIO_CTX  # the 3 s clip uses a fraction of the 30 s window


def test_final_transcript_has_language_confidence_and_timing(stt: WhisperCppSTT, go_forward) -> None:
    event = run(stt.recognize(go_forward, start_time=10.0))
    data = event.alternatives[0]
    assert normalize_words(data.text).startswith("go forward")
    assert data.language == "en"
    assert 0.3 < data.confidence <= 1.0
    assert data.start_time == 10.0 and abs(data.end_time - (10.0 + go_forward.seconds)) < 1e-6
    assert event.metrics is not None and event.metrics.duration > 0


def test_any_sample_rate_is_accepted(stt: WhisperCppSTT, corpus: Path, tmp_path: Path) -> None:
    src = read_audio(corpus / "something.raw")
    path = tmp_path / "8k.wav"
    sf.write(path, read_audio(corpus / "something.raw", rate=None).data, 16000)
    eight = tmp_path / "eight.wav"
    from appliance.audio.resample import resample

    sf.write(eight, resample(src, 8000).data, 8000, subtype="PCM_16")
    text = stt.recognize_sync(read_audio(eight))[0].text
    assert "somewhere" in normalize_words(text)


def test_short_word_is_padded_not_refused(stt: WhisperCppSTT, corpus: Path) -> None:
    clip = read_audio(corpus / "cards" / "001.wav")  # "ten of clubs", 1.1 s
    short = AudioFrame(clip.data[: int(0.6 * 16000)], 16000)
    stt.recognize_sync(short)  # no exception: whisper.cpp needs 1 s, the engine pads


def test_empty_audio_is_a_clear_error(stt: WhisperCppSTT) -> None:
    with pytest.raises(AudioError, match="empty"):
        stt.recognize_sync(AudioFrame(np.zeros(0, np.int16), 16000))
