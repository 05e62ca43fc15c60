"""The daemon on a sound card whose microphone hears its speaker: 6 dB down, 80 ms late, with a room tail.

The rig feeds the speaker's monitor back into the microphone (``appliance.rig.acoustic``). The questions
and the wake phrase are SYNTHETIC speech (the Piper voice); the talk-over is real recorded speech
(pocketsphinx-testdata, "go forward ten meters"), or a SYNTHETIC "Hey Jarvis, stop.".
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.bench import normalize_words
from appliance.bench.echo import EchoRig, echo_rig
from appliance.rig.daemon_process import voiced_span

RAISED = 3.0
"""Gain on the recorded talk-over (+9.5 dB): the user speaks up over the loud reply, to about 4 dB above its
echo at the microphone (the clip alone is 5 dB below it)."""
STOPPED_WITHIN = 2.5
"""Seconds from the talk-over's first word within which the reply must have gone quiet: it is stopped, not
played on (how fast is ``appliance-cli bench --echo``'s figure: 0.72 s p50, 1.52 s at worst over 10)."""
QUESTIONS = (
    "What is the capital of France?",
    "How many days are in a week?",
    "What colour is the sky on a clear day?",
    "What is two plus three?",
    "Name a fruit that is yellow.",
    "What do bees make?",
    "How many legs does a cat have?",
    "What is the opposite of hot?",
    "Which planet do we live on?",
    "What do you call a baby dog?",
)


def _say(rig: EchoRig, synth: Callable[[str], AudioFrame], text: str) -> float:
    assert rig.daemon is not None
    rig.daemon.wait_state("waiting_for_wake", timeout=90)
    time.sleep(0.5)
    since = time.time()
    silence = np.zeros(SAMPLE_RATE // 3, np.int16)
    audio = np.concatenate([synth("Hey, Jarvis.").data, silence, synth(text).data, silence])
    rig.mic.play(AudioFrame(audio, SAMPLE_RATE))
    return since


@pytest.fixture(scope="module")
def cancelling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EchoRig]:
    with echo_rig(Path(tmp_path_factory.mktemp("echo-on")), daemon_config="on") as rig:
        assert rig.daemon is not None
        rig.daemon.wait_ready()
        yield rig


def test_ten_replies_on_an_open_speaker_play_to_the_end_and_wake_nothing(
    cancelling: EchoRig, synth: Callable[[str], AudioFrame]
) -> None:
    daemon = cancelling.daemon
    assert daemon is not None
    began = time.time()
    for question in QUESTIONS:
        since = _say(cancelling, synth, question)
        daemon.wait_event("agent_state_changed", since, timeout=60, new_state="speaking")
        reply = daemon.wait_item("assistant", since, timeout=90)
        assert not reply["interrupted"], f"the reply to {question!r} was cut: {reply['content']!r}"
        daemon.wait_state("waiting_for_wake", timeout=60)
    users = [e["item"]["content"] for e in daemon.find("conversation_item_added", began) if e["item"]["role"] == "user"]
    assert len(users) == len(QUESTIONS), f"turns taken from the device's own voice: {users}"
    assert not daemon.find("speech_paused", began), "a reply paused for the device's own voice"
    assert len(daemon.find("wake_word_detected", began)) == len(QUESTIONS), "the device woke on its own voice"


def test_talking_over_a_loud_reply_stops_it_and_the_question_is_heard(
    cancelling: EchoRig, synth: Callable[[str], AudioFrame], go_forward: AudioFrame
) -> None:
    daemon = cancelling.daemon
    assert daemon is not None
    since = _say(cancelling, synth, "Tell me a long story about a dragon who lives in a castle.")
    daemon.wait_event("agent_state_changed", since, timeout=60, new_state="speaking")
    time.sleep(1.5)
    # the user speaks up over the loud reply (while it plays, the microphone lets through only what is louder
    # than the reply's echo: see appliance.echo.gate)
    raised = np.clip(go_forward.data.astype(np.float64) * RAISED, -32768, 32767).astype(np.int16)
    talk = cancelling.mic.play(AudioFrame(np.concatenate([raised, np.zeros(8000, np.int16)]), SAMPLE_RATE))
    daemon.wait_event("speech_paused", since, timeout=10)
    assert talk.started is not None
    final = daemon.wait_event("user_input_transcribed", talk.started, timeout=30, is_final=True)
    # what was said once the reply had stopped is heard whole; the words spoken over it may be damaged
    # (their WER is a figure of ``appliance-cli bench --echo``)
    assert "meters" in normalize_words(final["transcript"]), final["transcript"]
    assert talk.started is not None
    voice_start, _ = voiced_span(go_forward)
    time.sleep(1.0)
    silent = cancelling.speaker.first_silence(talk.started + voice_start, hold=0.6)
    # stopped, not how fast: the story would play on for many seconds (the latency is a bench figure)
    assert silent is not None and silent - (talk.started + voice_start) < STOPPED_WITHIN, "the reply did not stop"


def test_the_wake_phrase_and_stop_over_a_loud_reply_stop_it_for_good(
    cancelling: EchoRig, synth: Callable[[str], AudioFrame]
) -> None:
    """ "Hey Jarvis, stop." (SYNTHETIC, the reply's own voice, spoken up) over a story: the story stops, and
    the model is not asked: the device goes back to waiting for its wake word with nothing more said. The
    wake word stops the reply; the "stop" after it goes to the stop intent whatever Whisper made of the wake
    phrase under the reply ("8th of this, stop.", "A drug is stopped." were heard), or is not a turn at all
    when the wake model fired late, at the end of "stop"."""
    daemon = cancelling.daemon
    assert daemon is not None
    since = _say(cancelling, synth, "Tell me a long story about a knight who lost his horse.")
    daemon.wait_event("agent_state_changed", since, timeout=60, new_state="speaking")
    time.sleep(1.5)
    stop = synth("Hey Jarvis, stop.")
    raised = np.clip(stop.data.astype(np.float64) * RAISED, -32768, 32767).astype(np.int16)
    talk = cancelling.mic.play(AudioFrame(np.concatenate([raised, np.zeros(8000, np.int16)]), SAMPLE_RATE))
    talk.done.wait(30)
    assert talk.started is not None
    story = daemon.wait_item("assistant", since, timeout=30)
    assert story["interrupted"], story
    rested = daemon.wait_event("agent_state_changed", talk.started, timeout=30, new_state="waiting_for_wake")
    time.sleep(1.0)
    said = [e["transcript"] for e in daemon.find("user_input_transcribed", talk.started, is_final=True)]
    replies = [e["item"] for e in daemon.find("conversation_item_added", since) if e["item"]["role"] == "assistant"]
    assert len(replies) == 1, f"the words went to the model: {said} -> {replies[-1]['content']!r}"
    assert not daemon.find("agent_state_changed", rested["created_at"], new_state="speaking")
    voice_start, _ = voiced_span(stop)
    silent = cancelling.speaker.first_silence(talk.started + voice_start, hold=0.6)
    assert silent is not None and silent - (talk.started + voice_start) < STOPPED_WITHIN, "the reply did not stop"


def test_without_cancellation_the_same_card_makes_the_device_interrupt_itself(
    tmp_path: Path, synth: Callable[[str], AudioFrame]
) -> None:
    """The rig really has an echo path: with cancellation off, the device's own reply is taken for the user."""
    with echo_rig(tmp_path, daemon_config="off") as rig:
        daemon = rig.daemon
        assert daemon is not None
        daemon.wait_ready()
        since = _say(rig, synth, "Tell me a long story about a pirate who finds an old map.")
        daemon.wait_event("agent_state_changed", since, timeout=60, new_state="speaking")
        paused = daemon.wait_event("speech_paused", since, timeout=30)
        assert paused, "the reply was not taken for the user talking over it"
