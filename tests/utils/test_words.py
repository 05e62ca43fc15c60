"""The words that leave a sentence open."""

from __future__ import annotations

import pytest

from appliance.utils.words import ends_mid_phrase, leaves_open


@pytest.mark.parametrize(
    ("text", "open_"),
    [
        ("What is the capital city of?", True),  # Whisper's punctuation does not close it
        ("Set a timer for, um...", True),
        ("Tell me a short joke about", True),
        ("How many legs does a spider have and", True),
        ("What is the capital city of Australia?", False),
        ("What is going on?", False),
        ("Turn it off.", False),
        ("", False),
    ],
)
def test_a_last_word_that_leaves_the_sentence_open(text: str, open_: bool) -> None:
    assert leaves_open(text) is open_


@pytest.mark.parametrize(
    ("text", "mid"),
    [("Sure, the oven is", True), ("The capital of", True), ("The capital of France", False), ("Yes", False)],
)
def test_a_piece_that_ends_mid_phrase(text: str, mid: bool) -> None:
    assert ends_mid_phrase(text) is mid
