"""Piper with the real en_US-joe-medium voice."""

import asyncio
from pathlib import Path

import numpy as np
import pytest

from appliance.engines import DEFAULT_TTS, EngineChoice
from appliance.errors import ModelError
from appliance.tts.piper import PiperTTS
from appliance.tts.sentences import SentenceStream
from tests.helpers import run
from tests.models.corrupt import copy_verified, onnx_initializer, rot


def test_synthesis_is_audible_speech_at_the_voice_rate(tts: PiperTTS) -> None:
    frame = tts.synthesize_sync("The kitchen light is now on.")
    assert frame.sample_rate == 22050 == tts.sample_rate
    assert 1.0 < frame.seconds < 4.0
    assert frame.rms_dbfs() > -30
    # speech has pauses and bursts: the level varies, unlike a tone or noise
    blocks = np.array([b.rms_dbfs() for b in frame.split(2205)][:-1])
    assert blocks.max() - blocks.min() > 15


def test_first_sentence_is_spoken_before_the_reply_is_finished(tts: PiperTTS) -> None:
    async def go():
        stream = tts.stream()
        for token in ["Sure", ",", " it", " is", " off", ".", " Anything"]:
            stream.push_text(token)
        first = await asyncio.wait_for(stream.__anext__(), 10)  # input has not ended yet
        stream.push_text(" else?")
        stream.end_input()
        rest = [a async for a in stream]
        await stream.aclose()
        return first, rest, stream.metrics

    first, rest, metrics = run(go())
    assert first.text == "Sure, it is off."  # "Sure," alone would leave a gap after it
    assert [a.text for a in rest] == ["Anything else?"]
    assert metrics.ttfb > 0 and metrics.audio_duration > 1.0 and metrics.characters > 20


def test_cancel_drops_queued_sentences(tts: PiperTTS) -> None:
    async def go():
        stream = tts.synthesize("One sentence here. " * 6)
        first = await stream.__anext__()
        await stream.aclose()
        return first, stream.metrics

    first, metrics = run(go())
    assert first.frame.seconds > 0.5
    assert metrics.cancelled
    assert metrics.characters < len("One sentence here. " * 6)


def test_sentence_stream_keeps_abbreviations_and_decimals_together() -> None:
    s = SentenceStream()
    out = []
    for piece in "Hello there. Mr. Smith paid 3.50 dollars today. Then he left. Bye".split(" "):
        out += s.push(piece + " ")
    out += s.flush()
    assert out == ["Hello there.", "Mr. Smith paid 3.50 dollars today.", "Then he left.", "Bye"]


def test_the_first_piece_ends_at_its_first_clause() -> None:
    s = SentenceStream()
    out = s.push("Well, in the end, it is a quiet morning and ")
    assert out == ["Well, in the end,"]  # "the" leaves three words open; the comma closes the clause
    assert s.push("tea. Then more. ") == ["it is a quiet morning and tea."]


def test_a_first_clause_of_a_word_or_two_is_not_cut_off_alone() -> None:
    s = SentenceStream()
    assert s.push("Sure, here ") == []  # its audio would end long before the next piece is written
    assert s.push("is a story about ") == ["Sure, here is a story"]  # "is a" leave it open: two words more
    s = SentenceStream()
    assert s.push("Sure, here is one ") == ["Sure, here is one"]


def test_the_first_piece_is_three_words_then_sentences_follow() -> None:
    s = SentenceStream()
    out: list[str] = []
    for token in ["The", " answer", " depends", " on", " many", " different", " things", " here", ". It", " does", "."]:
        out += s.push(token)
    out += s.flush()
    assert out == ["The answer depends", "on many different things here.", "It does."]


def test_the_second_piece_ends_at_its_first_clause_so_a_long_sentence_leaves_no_gap() -> None:
    s = SentenceStream()
    out: list[str] = []
    text = "To make a cup of tea, first boil the water, then pour it over the leaves, and wait. Then drink it."
    for word in text.split(" "):
        out += s.push(word + " ")
    out += s.flush()
    assert out == [
        "To make a cup",
        "of tea, first boil the water,",  # "of tea," is too short to go alone
        "then pour it over the leaves, and wait.",  # later pieces are whole sentences
        "Then drink it.",
    ]


def test_the_first_piece_goes_on_past_a_word_that_leaves_it_open() -> None:
    s = SentenceStream()
    assert s.push("The capital of the ") == []
    assert s.push("country is ") == ["The capital of the country"]
    s = SentenceStream()
    assert s.push("The oven is off ") == ["The oven is off"]  # "is" takes what follows
    s = SentenceStream()
    assert s.push("It is the of the of the of ") == ["It is the of the of"]  # six words at most


def test_the_first_piece_waits_for_a_word_to_be_complete() -> None:
    s = SentenceStream()
    assert s.push("One two thir") == []  # "thir" is not a word yet
    assert s.push("teen ") == ["One two thirteen"]


def test_unspeakable_text_is_skipped() -> None:
    s = SentenceStream()
    assert s.push("... ") == []
    assert s.flush() == []


@pytest.mark.parametrize(("fill", "sound"), [(0xFF, "silence"), (None, "levels")], ids=["nan", "flipped"])
def test_weights_gone_bad_under_a_valid_stamp_fail_the_load_naming_the_file_and_the_fix(
    models, tmp_path: Path, fill: int | None, sound: str
) -> None:
    """Before the check at load such a voice loaded, and spoke every reply as silence (NaN weights) or as a
    full-scale buzz (flipped ones)."""
    copy = copy_verified(models, tmp_path, DEFAULT_TTS, f"{DEFAULT_TTS}-config")
    path = copy.store.path(copy.spec(DEFAULT_TTS))
    rot(path, onnx_initializer(path, "dec.ups.0.weight"), fill)
    with pytest.raises(ModelError) as err:
        copy.tts(EngineChoice())
    message = str(err.value)
    assert str(path) in message and sound in message and len(message.splitlines()) == 1
    assert f"`appliance-cli models fetch --name {DEFAULT_TTS} --force`" in message
