"""Turn-taking policy: words versus noises, what the user heard, the wake-word gate."""

from __future__ import annotations

import pytest

from appliance.agent.options import CUT_NOTE, SessionOptions
from appliance.agent.state import AgentState, StateMachine
from appliance.agent.turns import (
    Spoken,
    WakeGate,
    confirms_interruption,
    has_words,
    heard_text,
)
from appliance.errors import ApplianceError
from appliance.llm.chat import ChatContext, ChatMessage, Role


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Go forward ten meters.", True),
        ("Stop.", True),
        ("", False),
        ("[BLANK_AUDIO]", False),
        ("(coughing)", False),
        ("*cough*", False),
        ("Mm-hmm.", False),
        ("MMMM.", False),
        ("Mhm", False),
        ("Hmm...", False),
        ("Uh-huh, uh", False),
        ("Mm-hmm, stop", True),
    ],
)
def test_has_words(text: str, expected: bool) -> None:
    assert has_words(text) is expected


def test_talk_over_must_be_confident_clear_words() -> None:
    assert confirms_interruption("Go forward ten meters.", 0.72)
    assert not confirms_interruption("in an emmenta.", 0.33)  # whisper guessing at a hum
    loop = "And then and and and. And then and and. And then" + " and" * 14 + "."
    assert not confirms_interruption(loop, 0.45)  # a decoding loop
    assert not confirms_interruption("Mm-hmm.", 0.9)


def test_heard_text_keeps_whole_sentences_then_the_played_share() -> None:
    spoken = [Spoken("Once upon a time.", 1.0), Spoken("There was a dragon in a castle.", 2.0)]
    assert heard_text(spoken, 0.0) == ""
    assert heard_text(spoken, 1.0) == "Once upon a time."
    assert heard_text(spoken, 2.0) == "Once upon a time. There was a"
    assert heard_text(spoken, 10.0) == "Once upon a time. There was a dragon in a castle."


def test_wake_gate_feeds_pre_roll_when_sound_starts_and_maps_times_back() -> None:
    gate = WakeGate(threshold=0.15, hold=1.0, pre_roll=2.0)
    assert gate.update(5.0, 0.01) is None  # silence: the wake model sleeps
    span = gate.update(5.032, 0.9)  # sound: start 2 s back
    assert span == (round(3.032 * 16000), round(5.032 * 16000))
    assert gate.update(5.064, 0.05) == (span[1], round(5.064 * 16000))  # held open, contiguous
    assert gate.update(7.0, 0.0) is None  # past the hold
    # 1.0 s on the model's clock is 1.0 s after the start of the first burst
    assert gate.stream_position(1.0) == span[0] + 16000
    reopened = gate.update(20.0, 0.8)
    assert reopened is not None
    fed_before = span[1] - span[0] + round(5.064 * 16000) - span[1]
    assert gate.stream_position(fed_before / 16000 + 0.5) == reopened[0] + 8000


def test_state_machine_refuses_impossible_moves_and_tracks_deadlines() -> None:
    sm = StateMachine()
    with pytest.raises(ApplianceError, match="initializing to thinking"):
        sm.move(AgentState.THINKING, None)
    sm.move(AgentState.WAITING_FOR_WAKE, None)
    assert not sm.expired()
    sm.move(AgentState.LISTENING, 0.0)
    assert sm.expired()
    sm.extend(None)
    assert not sm.expired()


def test_the_agent_imports_no_sound_device_library_nor_engine() -> None:
    """The agent sees stage interfaces and abstract audio: importing it opens no sound library or native engine."""
    import subprocess
    import sys

    code = (
        "import sys, appliance.agent\n"
        "print([m for m in ('sounddevice', 'llama_cpp', 'pywhispercpp', 'onnxruntime', 'piper') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_a_reply_the_user_cut_is_told_to_the_model_as_a_note_quoting_what_was_heard() -> None:
    """The model reads what was heard of a cut reply in a note, not as its own words: "Once upon a time," as
    its answer to a story request was imitated as the whole next story."""
    ctx = ChatContext(
        [
            ChatMessage(Role.USER, "Tell me a story."),
            ChatMessage(Role.ASSISTANT, "Once upon a time,", interrupted=True),
            ChatMessage(Role.USER, "Another one."),
            ChatMessage(Role.ASSISTANT, "A fox met a crow."),
        ]
    )
    items = SessionOptions().budgeted(ctx).messages()
    assert [m.role for m in items] == [Role.USER, Role.SYSTEM, Role.USER, Role.ASSISTANT]
    assert items[1].content == CUT_NOTE.format(heard="Once upon a time,")
    assert '"Once upon a time,"' in items[1].content and "interrupted" in items[1].content
    assert ctx.messages()[1].content == "Once upon a time,"  # the conversation itself is untouched
