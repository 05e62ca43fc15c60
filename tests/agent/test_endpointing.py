"""The end of the user's turn: a turn detector that shortens the silence after a finished sentence and waits
through a pause in an unfinished one, and the reply made ahead during that silence.

All audio here is SYNTHETIC (tests/agent/scripted.py: a constant-sample "wake phrase", noise "speech"), fed
in real time, since the endpointing silence is measured on the clock of the input.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from appliance.agent import events as ev
from appliance.agent.state import AgentState
from tests.agent.scripted import ScriptedTurn, engines, quiet, speech, wake_phrase
from tests.agent.test_scripted_session import converse


@pytest.fixture
def stages() -> dict[str, Any]:
    made = engines()
    made["turn_detector"] = ScriptedTurn()
    yield made
    made["vad"].close()


def question(*said: np.ndarray) -> np.ndarray:
    return np.concatenate([quiet(0.3), wake_phrase(), quiet(0.7), *said, quiet(2.5)])


SENTENCE = question(speech(1.0))
PAUSED = question(speech(0.8), quiet(0.8), speech(0.8, seed=2))
"""A sentence with a 0.8 s pause in its middle (longer than the fixed 0.5 s rule)."""


def turn_metrics(result: Any) -> list[Any]:
    return [e.metrics for e in result.of(ev.MetricsCollectedEvent)]


def test_a_finished_sentence_ends_after_the_short_silence(stages) -> None:
    result = converse(stages, SENTENCE, realtime=True, preemptive_generation=False)
    (metrics,) = turn_metrics(result)
    assert metrics.turn_completion == pytest.approx(0.9)
    assert metrics.turn_detector_latency is not None
    # complete_endpointing_delay is 0.25 s; the fixed rule would have waited 0.5 s, an unfinished one 1.5 s
    assert metrics.end_of_utterance_delay is not None and metrics.end_of_utterance_delay < 0.45


def test_an_unfinished_sentence_waits_through_its_pause(stages) -> None:
    stages["turn_detector"].judge = lambda audio: audio.seconds > 2.5  # only the whole utterance sounds finished
    heard: list[float] = []
    stages["stt"].text = lambda audio: heard.append(audio.seconds) or "set a timer for ten minutes"
    result = converse(stages, PAUSED, realtime=True, preemptive_generation=False)
    (metrics,) = turn_metrics(result)
    assert [role for role, _ in result.items()] == ["user", "assistant"]  # one turn, not two
    assert heard[-1] > 2.3  # the turn is the whole sentence, both halves
    assert len(stages["turn_detector"].heard) == 2  # each pause was judged
    assert metrics.end_of_utterance_delay is not None and metrics.end_of_utterance_delay < 0.45


def test_with_the_fixed_rule_the_same_pause_cuts_the_sentence(stages) -> None:
    stages.pop("turn_detector")
    result = converse(stages, PAUSED, realtime=True, preemptive_generation=False)
    users = [text for role, text in result.items() if role == "user"]
    assert len(users) == 2  # what the turn detector is for: 0.5 s of silence ends a turn mid-sentence


def test_an_unfinished_sentence_that_stays_unfinished_ends_at_the_longest_wait(stages) -> None:
    stages["turn_detector"].judge = lambda audio: False
    result = converse(stages, SENTENCE, realtime=True, preemptive_generation=False)
    (metrics,) = turn_metrics(result)
    assert metrics.turn_completion == pytest.approx(0.1)
    assert metrics.end_of_utterance_delay is not None and 1.45 < metrics.end_of_utterance_delay < 2.2


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_a_failing_turn_detector_leaves_the_fixed_rule_in_charge(stages, mode: str) -> None:
    stages["turn_detector"].mode = mode
    result = converse(stages, SENTENCE, realtime=True, preemptive_generation=False)
    (metrics,) = turn_metrics(result)
    assert result.items()[-1][0] == "assistant"
    assert metrics.turn_completion is None
    # min_endpointing_delay (0.5 s) decided, not the 1.5 s wait for an unfinished sentence
    assert metrics.end_of_utterance_delay is not None and 0.45 < metrics.end_of_utterance_delay < 1.4


def test_a_reply_made_ahead_plays_only_after_the_turn_ends(stages) -> None:
    stages["turn_detector"].judge = lambda audio: False  # a long silence to make the reply in
    result = converse(stages, SENTENCE, realtime=True)
    (metrics,) = turn_metrics(result)
    stopped = result.of(ev.UserStoppedSpeakingEvent)[0].created_at
    speaking = [e.created_at for e in result.of(ev.AgentStateChangedEvent) if e.new_state is AgentState.SPEAKING]
    assert metrics.preemptive
    assert stages["llm"].asked_at[0] < stopped - 0.5  # asked during the silence...
    assert stages["tts"].spoken and speaking[0] > stopped  # ...but heard only once the turn had ended
    assert stages["stt"].calls == 1
    assert result.items() == [("user", "what time is it"), ("assistant", "It is noon. Time for lunch.")]
    assert not result.of(ev.PreemptiveDiscardedEvent)
    assert metrics.eos_to_first_audio is not None and metrics.eos_to_first_audio < metrics.end_of_utterance_delay + 0.3


def test_a_reply_made_ahead_is_dropped_when_the_user_goes_on(stages) -> None:
    stages["turn_detector"].judge = lambda audio: audio.seconds > 2.5
    said = iter(["set a timer", "set a timer for ten minutes"])
    stages["stt"].text = lambda audio: next(said, "set a timer for ten minutes")
    result = converse(stages, PAUSED, realtime=True)
    (discarded,) = result.of(ev.PreemptiveDiscardedEvent)
    assert discarded.reason == "user went on speaking"
    assert stages["llm"].stopped >= 1  # its request was closed at the engine
    assert len(stages["llm"].seen) == 2
    assert result.items() == [("user", "set a timer for ten minutes"), ("assistant", "It is noon. Time for lunch.")]
    assert turn_metrics(result)[0].preemptive  # the second pause's reply was made ahead too, and used


def test_without_a_turn_detector_the_reply_is_made_ahead_in_the_fixed_silence(stages) -> None:
    stages.pop("turn_detector")
    result = converse(stages, SENTENCE, realtime=True)
    (metrics,) = turn_metrics(result)
    stopped = result.of(ev.UserStoppedSpeakingEvent)[0].created_at
    assert metrics.preemptive and metrics.turn_completion is None
    assert stages["llm"].asked_at[0] < stopped


def test_the_silence_between_the_wake_word_and_the_question_is_not_transcribed(stages) -> None:
    """With the longer wait, the wake phrase and the question are one utterance: the STT still hears only the
    question (a second of silence before words makes Whisper repeat them)."""
    heard: list[float] = []
    stages["stt"].text = lambda audio: heard.append(audio.seconds) or "what time is it"
    result = converse(stages, question(speech(1.0)), realtime=True, preemptive_generation=False)
    assert result.items()[0] == ("user", "what time is it")
    # the question (1.0 s), the VAD's padding before it (0.3 s) and the kept silence after it (0.12 s)
    assert heard and all(1.3 <= seconds <= 1.7 for seconds in heard), heard


def test_a_click_before_the_question_is_not_a_turn(stages) -> None:
    """A sound shorter than the VAD's shortest speech after the wake phrase (a click, a breath), then a pause
    the turn detector would call finished, then the question: one turn, the question. Before, the click and
    its silence were long enough to transcribe and Whisper made 'you' of them."""
    heard: list[float] = []
    stages["stt"].text = lambda audio: heard.append(audio.seconds) or "what time is it"
    click = speech(0.03, seed=3)
    said = np.concatenate([quiet(0.3), wake_phrase(), quiet(0.7), click, quiet(0.6), speech(1.0), quiet(2.5)])
    result = converse(stages, said, realtime=True, preemptive_generation=False)
    assert [role for role, _ in result.items()] == ["user", "assistant"], result.items()
    assert heard and all(seconds >= 1.3 for seconds in heard), heard


def test_a_sentence_that_sounds_finished_but_ends_on_an_open_word_waits(stages) -> None:
    """Both halves sound finished to the turn detector (as Piper's falling voice did on "What is the capital
    city of"), but the early transcript of the first ends on "of": the pause is held, and the turn is the
    whole sentence."""
    stages["stt"].text = lambda audio: (
        "what is the capital city of" if audio.seconds < 2.0 else "what is the capital city of australia"
    )
    result = converse(stages, PAUSED, realtime=True, preemptive_generation=False)
    users = [text for role, text in result.items() if role == "user"]
    assert users == ["what is the capital city of australia"], users
    (metrics,) = turn_metrics(result)
    assert metrics.end_of_utterance_delay is not None and metrics.end_of_utterance_delay < 0.45
