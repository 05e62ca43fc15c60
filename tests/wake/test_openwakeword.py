"""Wake phrases here are SYNTHETIC (Piper); the non-wake speech is REAL (LibriVox recordings)."""

import numpy as np
import pytest

from appliance.audio.frame import AudioFrame
from appliance.pipeline import detect_wake
from appliance.wake.base import WakeSettings
from appliance.wake.openwakeword import OpenWakeWordDetector
from tests.helpers import ALL_WAKE_WORDS, WAKE_PHRASES, join, run, silence


@pytest.mark.parametrize("word", ALL_WAKE_WORDS)
def test_each_shipped_wake_word_fires_on_its_phrase_only(wake: OpenWakeWordDetector, synth, word: str) -> None:
    clip = join(silence(1.0), synth(WAKE_PHRASES[word]).data, silence(1.0))
    hits = run(detect_wake(wake, clip))
    assert [h.name for h in hits] == [word]
    phrase_end = 1.0 + synth(WAKE_PHRASES[word]).seconds
    assert 1.0 < hits[0].timestamp <= phrase_end + 0.5
    assert hits[0].score >= 0.5


def test_real_speech_without_the_wake_word_does_not_trigger(wake: OpenWakeWordDetector, librivox) -> None:
    for audio, _ in librivox:
        assert run(detect_wake(wake, audio)) == []


def test_refractory_period_merges_repeats_but_not_separate_calls(models, synth) -> None:
    phrase = synth("Hey, Jarvis.").data
    detector = OpenWakeWordDetector(
        models.path("oww_melspectrogram"),
        models.path("oww_embedding"),
        {"hey_jarvis": models.path("hey_jarvis")},
        WakeSettings(refractory=4.0),
    )
    try:
        close_together = join(silence(0.5), phrase, silence(0.3), phrase, silence(1.0))
        far_apart = join(silence(0.5), phrase, silence(4.5), phrase, silence(1.0))
        assert len(run(detect_wake(detector, close_together))) == 1
        assert len(run(detect_wake(detector, far_apart))) == 2
    finally:
        detector.close()


def test_stream_accepts_frames_of_any_size(jarvis: OpenWakeWordDetector, synth) -> None:
    clip = join(silence(0.7), synth("Hey, Jarvis.").data, silence(1.0))

    async def odd_sizes() -> list:
        stream = jarvis.stream()
        for i, block in enumerate(clip.split(317)):
            stream.push_frame(block)
            if i % 20 == 0:
                stream.flush()
        stream.end_input()
        events = [e async for e in stream]
        await stream.aclose()
        return events

    assert [e.name for e in run(odd_sizes())] == ["hey_jarvis"]


def test_silence_and_noise_do_not_trigger(jarvis: OpenWakeWordDetector) -> None:
    rng = np.random.default_rng(0)
    noise = (rng.normal(0, 2000, 16000 * 5)).astype(np.int16)
    assert run(detect_wake(jarvis, AudioFrame(noise, 16000))) == []
    assert run(detect_wake(jarvis, join(silence(5.0)))) == []
