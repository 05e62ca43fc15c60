"""``appliance-cli run`` end to end through a real sound server, checked from outside at the speaker.

The wake phrase and the long-story request are SYNTHETIC (Piper); the questions and the talk-over
are REAL recorded speech (pocketsphinx-testdata).
"""

from __future__ import annotations

import time

from appliance.audio.frame import AudioFrame
from appliance.bench import normalize_words
from appliance.rig.daemon_process import DaemonProcess, voiced_span
from appliance.rig.sound_server import MicFeeder, MonitorRecorder
from tests.helpers import join, silence

MIN_INTERRUPTION = 0.5


def wake_then(synth, question: AudioFrame) -> tuple[AudioFrame, float]:  # type: ignore[no-untyped-def]
    """Wake phrase, a pause, the question; and where the question's speech ends in the clip."""
    head = join(silence(0.3), synth("Hey, Jarvis.").data, silence(0.5))
    _, end = voiced_span(question)
    return join(head.data, question.data, silence(0.5)), head.seconds + end


def sounding(speaker: MonitorRecorder, since: float, until: float) -> float:
    """Seconds of sound at the speaker in the window."""
    return sum(0.02 for _, level in speaker.levels(since, until) if level > -45)


def test_wake_phrase_then_a_real_question_is_answered_aloud(
    daemon: DaemonProcess, mic: MicFeeder, speaker: MonitorRecorder, synth, go_forward
) -> None:
    daemon.wait_state("waiting_for_wake")
    audio, speech_end = wake_then(synth, go_forward)
    clip = mic.play(audio)
    final = daemon.wait_event("user_input_transcribed", time.time() - 1, timeout=30, is_final=True)
    assert "go forward" in normalize_words(final["transcript"])
    metrics = daemon.wait_event("metrics_collected", clip.started or 0, timeout=60)["metrics"]
    assert clip.started is not None
    eos = clip.started + speech_end
    first_audio = speaker.first_sound(eos + 0.05)
    assert first_audio is not None, "no reply at the speaker"
    assert first_audio - eos < 3.0, f"reply took {first_audio - eos:.2f} s after the end of speech"
    assert metrics["played"] > 0.3 and not metrics["interrupted"]
    assert sounding(speaker, eos, time.time()) >= 0.3


def test_speech_without_the_wake_word_gets_no_reply(
    daemon: DaemonProcess, mic: MicFeeder, speaker: MonitorRecorder, librivox
) -> None:
    daemon.wait_state("waiting_for_wake", timeout=15)
    since = time.time()
    clip = mic.play(join(librivox[1][0].data, silence(0.5)))
    assert clip.done.wait(60)
    time.sleep(3.0)
    assert speaker.first_sound(since) is None, "the speaker made a sound without the wake word"
    assert daemon.find("user_input_transcribed", since) == []
    assert daemon.state() == "waiting_for_wake"


def test_talking_over_the_reply_silences_it_and_the_new_question_is_answered(
    daemon: DaemonProcess, mic: MicFeeder, speaker: MonitorRecorder, synth, go_forward
) -> None:
    daemon.wait_state("waiting_for_wake", timeout=15)
    audio, _ = wake_then(synth, synth("Tell me a long story about a dragon who lives in a castle."))
    since = time.time()
    mic.play(audio)
    daemon.wait_event("agent_state_changed", since, timeout=40, new_state="speaking")
    time.sleep(1.5)
    assert sounding(speaker, time.time() - 1.0, time.time()) > 0.5, "the reply is not playing"
    talk = mic.play(join(go_forward.data, silence(0.5)))
    paused = daemon.wait_event("speech_paused", since, timeout=10)
    assert talk.started is not None
    voice_start, voice_end = voiced_span(go_forward)
    talk_start = talk.started + voice_start
    time.sleep(1.0)  # let the silence be recorded; a pause between sentences is shorter than the hold
    silent_at = speaker.first_silence(talk_start, hold=0.6)
    assert silent_at is not None, "the speaker never went quiet"
    # quiet once the talk-over is long enough to count, plus the VAD's and the device's delays
    assert silent_at - talk_start < MIN_INTERRUPTION + 0.6, f"quiet {silent_at - talk_start:.2f} s after talk-over"
    assert silent_at - paused["created_at"] < 0.25, f"quiet {silent_at - paused['created_at']:.3f} s after decision"
    # the talk-over is the next turn: transcribed and answered, and the story is kept as heard
    final = daemon.wait_event("user_input_transcribed", talk.started, timeout=30, is_final=True)
    assert "go forward" in normalize_words(final["transcript"])
    cut = [e for e in daemon.find("conversation_item_added", since) if e["item"]["role"] == "assistant"]
    assert cut and cut[0]["item"]["interrupted"], "the cut reply is not marked interrupted"
    metrics = daemon.find("metrics_collected", since)
    assert metrics and metrics[0]["metrics"]["interrupted"]
    answer = daemon.wait_event("agent_state_changed", talk.started, timeout=30, new_state="speaking")
    assert answer
    time.sleep(0.8)
    end = talk.started + voice_end
    assert speaker.first_sound(end + 0.05) is not None, "the new question got no spoken answer"


def test_silence_after_the_wake_word_returns_to_waiting(
    daemon: DaemonProcess, mic: MicFeeder, speaker: MonitorRecorder, synth, go_forward
) -> None:
    daemon.wait_state("waiting_for_wake", timeout=60)
    since = time.time()
    mic.play(join(silence(0.3), synth("Hey, Jarvis.").data, silence(5.0)))
    daemon.wait_event("agent_state_changed", since, timeout=15, new_state="listening")
    back = daemon.wait_event("agent_state_changed", since, timeout=15, new_state="waiting_for_wake")
    assert back["reason"] == "listening timeout"
    time.sleep(0.5)
    assert speaker.first_sound(back["created_at"] - 0.2) is not None, "no timeout tone"
    # back to waiting: a question without the wake word is ignored
    time.sleep(3.0)
    later = time.time()
    clip = mic.play(join(go_forward.data, silence(0.5)))
    assert clip.done.wait(30)
    time.sleep(2.5)
    assert daemon.find("user_input_transcribed", later) == []
