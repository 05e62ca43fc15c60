"""STT on REAL recordings with reference transcripts (pocketsphinx-testdata)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from appliance.audio.frame import AudioFrame
from appliance.audio.wav import read_audio
from appliance.bench import normalize_words, word_error_rate
from appliance.engines import EngineChoice
from appliance.errors import AudioError, ModelError
from appliance.stt.whispercpp import FULL_AUDIO_CTX, WhisperCppSTT, WhisperSettings, without_loop
from tests.helpers import run
from tests.models.corrupt import copy_verified, ggml_tensor, rot

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
    assert wer_trim <= wer_full + 0.03  # two of the 71 words
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
    data, metrics = stt.recognize_sync(short)  # whisper.cpp needs 1 s: the engine pads instead of refusing
    assert "of" in normalize_words(data.text)  # "ten of" is all there is in 0.6 s
    assert metrics.audio_duration == pytest.approx(0.6)


def test_a_transcript_does_not_depend_on_the_utterance_before(models, librivox) -> None:
    """The question of the bundled clip (SYNTHETIC speech) on a fresh model, then again after longer speech:
    whisper.cpp keeps encoder output of a longer run in its padding, which a shorter run read unless the encoder
    size is a multiple of its padding (this question then came back as "the capital of friends")."""
    from appliance.bench import DEMO_CLIP

    question = AudioFrame(read_audio(DEMO_CLIP).data[30208:61952], 16000)  # "What is the capital of France?"
    stt = WhisperCppSTT(models.path("whisper-tiny.en"), WhisperSettings())
    try:
        fresh = stt.recognize_sync(question)[0].text
        after = []
        for audio, _ in sorted(librivox, key=lambda clip: -clip[0].seconds):
            stt.recognize_sync(audio)
            after.append(stt.recognize_sync(question)[0].text)
    finally:
        stt.close()
    assert "france" in normalize_words(fresh)
    assert after == [fresh] * len(after)


def test_empty_audio_is_a_clear_error(stt: WhisperCppSTT) -> None:
    with pytest.raises(AudioError, match="empty"):
        stt.recognize_sync(AudioFrame(np.zeros(0, np.int16), 16000))


def test_a_cancelled_transcription_stops_at_the_engine_so_the_next_one_is_fast(stt: WhisperCppSTT, librivox) -> None:
    """A long job cancelled while it runs is aborted inside whisper.cpp (its abort callback, checked after the
    encoder pass and at every decoding step): a short job behind it skips the long one's decoding."""
    import asyncio
    import time

    from appliance.audio.frame import merge_frames

    long = merge_frames(a for a, _ in librivox)  # about 25 s of real speech: a long decode
    short = read_audio(Path("/usr/share/pocketsphinx/test/data/goforward.raw"))

    async def behind_long(cancel: bool) -> float:
        task = asyncio.create_task(stt.recognize(long))
        await asyncio.sleep(0.3)
        if cancel:
            task.cancel()
        start = time.perf_counter()
        await stt.recognize(short)
        took = time.perf_counter() - start
        if not cancel:
            await task
        return took

    async def go() -> tuple[float, float]:
        await stt.recognize(short)  # warm
        return await behind_long(cancel=False), await behind_long(cancel=True)

    waiting, cancelled = run(go())
    assert cancelled < waiting - 0.3, f"behind a cancelled job {cancelled:.2f} s, behind a running one {waiting:.2f} s"


def test_a_wedged_transcription_does_not_hold_up_the_next(stt: WhisperCppSTT, models, go_forward, monkeypatch) -> None:
    """An abandoned job that keeps its model past WEDGED_AFTER: the next one runs on a second copy."""
    import asyncio
    import threading
    import time

    import appliance.stt.whispercpp as engine

    monkeypatch.setattr(engine, "WEDGED_AFTER", 0.1)
    own = WhisperCppSTT(models.path("whisper-tiny.en"))
    release = threading.Event()
    real = own._recognize

    def wedged(lane, audio, job):  # type: ignore[no-untyped-def]
        if lane is own._lanes[0]:
            release.wait(10)  # a native call that never checks the abort flag
        return real(lane, audio, job)

    monkeypatch.setattr(own, "_recognize", wedged)

    async def go() -> float:
        task = asyncio.create_task(own.recognize(go_forward))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        event = await own.recognize(go_forward)
        assert "go forward" in normalize_words(event.alternatives[0].text)
        return time.perf_counter() - start

    try:
        took = run(go())
    finally:
        release.set()
        own.close()
    assert took < 3.0 and len(own._lanes) == 2


def test_what_broken_weights_write_is_told_from_any_transcript() -> None:
    from appliance.stt.whispercpp import is_garbage

    assert is_garbage("!!!!!!!!!!!!") and is_garbage("! ! ! !")
    assert not is_garbage("Go forward ten meters!") and not is_garbage("!") and not is_garbage("(music)")


@pytest.mark.parametrize(
    ("heard", "kept"),
    [
        ("10 of Clopes 10 of Clopes 10 of Clopes 10 of Cl", "10 of Clopes"),  # cut mid-word by the token bound
        (
            "What is the weather like in? Paris today? Paris today? Paris today?",
            "What is the weather like in? Paris today?",
        ),
        (
            "Eight of spades, seven of hearts. Eight of spades, seven of hearts. Eight of",
            "Eight of spades, seven of hearts.",
        ),
        ("Go forward 10 meters.", "Go forward 10 meters."),
        ("no no", "no no"),  # said twice is speech
        ("It is what it is.", "It is what it is."),
    ],
)
def test_a_decoding_loop_is_taken_back_to_one_pass(heard: str, kept: str) -> None:
    assert without_loop(heard) == kept


def test_weights_gone_bad_under_a_valid_stamp_fail_the_load_naming_the_file_and_the_fix(models, tmp_path: Path) -> None:
    """Before the check at load such a model loaded, and every turn then failed on its "!!!!"."""
    copy = copy_verified(models, tmp_path, "whisper-tiny.en")
    path = copy.store.path(copy.spec("whisper-tiny.en"))
    rot(path, ggml_tensor(path, "encoder.blocks.0.mlp.0.weight"))
    with pytest.raises(ModelError) as err:
        copy.stt(EngineChoice())
    message = str(err.value)
    assert str(path) in message and "run of '!'" in message and len(message.splitlines()) == 1
    assert "`appliance-cli models fetch --name whisper-tiny.en --force`" in message
    with pytest.raises(ModelError, match="corrupted"):  # the stamp is gone: the next load hashes the file
        copy.path("whisper-tiny.en")
