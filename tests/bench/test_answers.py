"""The answers bench on the real default models, cut short (the figures come from the full run)."""

from __future__ import annotations

from appliance.bench.answers import Question, answer_words, is_right, run_answers_bench
from appliance.engines import Models


def test_an_answer_is_right_when_it_says_an_accepted_word_in_words_or_digits() -> None:
    legs = Question("How many legs does a spider have?", ("8",))
    assert is_right("A spider has eight legs.", legs) and is_right("It has 8.", legs)
    assert not is_right("A spider has eighty legs.", legs) and not is_right("Four.", legs)
    assert is_right("Plants take in carbon dioxide.", Question("?", ("carbon dioxide",)))
    assert answer_words("Twenty-four hours!") == " 24 hours "


def test_the_answers_bench_reports_accuracy_the_conversation_and_the_intents(models: Models) -> None:
    report = run_answers_bench(models, limit=3)
    questions, conversation, intents = report["questions"], report["conversation"], report["intents"]
    assert questions["questions"] == 3 and 0.0 <= questions["speech_accuracy"] <= 1.0
    assert questions["text_accuracy"] == 1.0  # the first three are easy for the default model
    assert conversation["turns"] == 3 and len(conversation["ttft_per_turn"]) == 3
    assert all(0 < t < 30 for t in conversation["reply_to_first_audio_per_turn"])
    assert all(r.strip() for r in conversation["replies"])
    assert intents["phrases"] == 3 and intents["decision_to_answer_ms_max"] >= 0
    assert report["tools"]["requests"] == 3 and report["tools"]["carried_out"] == 3
