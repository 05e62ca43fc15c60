"""Text fit to read aloud: Markdown and emoji out of an LLM reply, the same however the reply streams in."""

from __future__ import annotations

import itertools
import random
import time

import pytest

from appliance.agent.speakable import SpeakableText, speakable

SMALL_MODEL_REPLY = "Sure! 😊 Here are **three** fruits:\n\n1. Apple\n2. Banana\n3. Cherry\n\nEnjoy! 🍎"

PROSE = (
    "It's 3:42 PM and 3.5 degrees, about 50% warmer than yesterday. "
    'C++ and C# cost $5, e.g. for "games" - or so she said \u2014 twice. '
    "Don't worry: 1,000 items; 42! The #1 pick was 2024's best (really?). "
    "It's 10:30, i.e. late; use 2 * 3 or 2*3 in snake_case_names like file_name.py. "
    "Caf\u00e9 cr\u00e8me costs \u20ac4.50 \u2013 fine, it\u2019s \u201cgood\u201d. Wait... what?"
)

DOCUMENTS = [
    SMALL_MODEL_REPLY,
    PROSE,
    "# Shopping list\n\nYou'll need:\n\n- **eggs** (a dozen)\n- _fresh_ milk\n* bread\n+ `butter`\n\nThat's all! ✅",
    "## Steps\n1) Preheat to 200\u00b0C\n2) Mix the __flour__ and ~~sugar~~ honey\n10. Bake 👩‍🍳\n\nDone.",
    "| Fruit | Color |\n|:---|---:|\n| **Apple** | red |\n| Banana | yellow |\n\nSee [the chart](https://x.org/a_(b)).",
    "Try this:\n```python\nprint('hi')  # *not* emphasis\n```\nThen run `ls -la`.\n\n---\n\n> Quoted *line*\n",
    "👉 Tip → drink water 💧\n🇫🇷 Paris 👍🏽\n1️⃣ First\n👨‍👩‍👧 Family\n\u2022 bullet one\n\u2022 bullet two",
    "Visit https://example.com/docs or http://a.b now.\n![logo](logo.png) and \\*literal\\* stars, 5* rated.",
]


def stream(text: str, cuts: list[int]) -> str:
    """What a SpeakableText says when ``text`` arrives cut at ``cuts``."""
    filt = SpeakableText()
    bounds = [0, *cuts, len(text)]
    said = [filt.push(text[a:b]) for a, b in itertools.pairwise(bounds)]
    return "".join(said) + filt.flush()


def token_cuts(text: str, rng: random.Random) -> list[int]:
    """Cut points as an LLM's tokens of one to five characters would fall."""
    cuts: list[int] = []
    pos = 0
    while True:
        pos += rng.randint(1, 5)
        if pos >= len(text):
            return cuts
        cuts.append(pos)


def test_a_small_model_reply_reads_as_sentences() -> None:
    assert speakable(SMALL_MODEL_REPLY) == "Sure! Here are three fruits: Apple, Banana, Cherry. Enjoy!"


def test_plain_prose_passes_through_unchanged() -> None:
    assert speakable(PROSE) == PROSE
    for sentence in PROSE.split(". "):
        assert speakable(sentence) == sentence


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("This is **bold** and __strong__.", "This is bold and strong."),
        ("An *italic* and _slanted_ word.", "An italic and slanted word."),
        ("***Both*** at once", "Both at once"),
        ("**Note:** read this", "Note: read this"),
        ("Run `make test` first", "Run make test first"),
        ("Use ``a`b`` here", "Use a`b here"),
        ("Was ~~old~~ new, ~5 min", "Was old new, ~5 min"),
        ("snake_case_words and __init__.py", "snake_case_words and init.py"),
        ("5 * 3 is 15, 2*3 is 6, 2*(3+4) is 14", "5 * 3 is 15, 2*3 is 6, 2*(3+4) is 14"),
        ("Rated 5* by critics", "Rated 5* by critics"),
        ("Not \\*emphasis\\* here", "Not *emphasis* here"),
    ],
)
def test_emphasis_code_and_strikethrough_keep_the_words(text: str, expected: str) -> None:
    assert speakable(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# Title\nText", "Title. Text"),
        ("### A smaller title\nText", "A smaller title. Text"),
        ("## What's next?\nText", "What's next? Text"),
        ("# Closed heading ##\nText", "Closed heading. Text"),
        ("Intro\n## Part two", "Intro. Part two."),
        ("#hashtag and #1 are not headings", "#hashtag and #1 are not headings"),
        ("Title\n=====\nBody", "Title. Body"),
    ],
)
def test_a_heading_is_a_sentence_of_its_own(text: str, expected: str) -> None:
    assert speakable(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- eggs\n- milk", "eggs, milk."),
        ("* eggs\n* milk\n+ bread", "eggs, milk, bread."),
        ("1. eggs\n2. milk\n10. bread", "eggs, milk, bread."),
        ("1) eggs\n2) milk", "eggs, milk."),
        ("You need:\n- eggs\n- milk\nThat's it.", "You need: eggs, milk. That's it."),
        ("Steps\n1. Mix.\n2. Bake!", "Steps. Mix. Bake!"),
        ("- a\n  - nested\n- b", "a, nested, b."),
        ("1. loose\n\n2. list", "loose. list."),
        ("\u2022 one\n\u2022 two", "one, two."),
        ("✅ Eggs\n✅ Milk", "Eggs, Milk."),
        ("→ first\n→ second", "first, second."),
        ("3.5 is not a list", "3.5 is not a list"),
        ("-5 degrees and +1 for that", "-5 degrees and +1 for that"),
    ],
)
def test_list_items_end_in_a_pause_and_lose_their_markers(text: str, expected: str) -> None:
    assert speakable(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("See [the docs](https://example.com/a_(b)) today.", "See the docs today."),
        ("A picture: ![a red apple](apple.png)", "A picture: a red apple"),
        ("Notes [1] and [see below] stay", "Notes [1] and [see below] stay"),
        ("Visit https://example.com/docs now.", "Visit example.com/docs now."),
        ("Or http://a.b, and the hat stays", "Or a.b, and the hat stays"),
    ],
)
def test_links_say_their_text_and_urls_lose_the_scheme(text: str, expected: str) -> None:
    assert speakable(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Great job! 🎉🎉", "Great job!"),
        ("Tea 🍵.", "Tea."),
        ("Hi there 😊 friend", "Hi there friend"),
        ("Great!😊Next", "Great! Next"),
        ("The family 👨‍👩‍👧‍👦 is home", "The family is home"),
        ("Thumbs 👍🏽 up", "Thumbs up"),
        ("Paris 🇫🇷 is lovely", "Paris is lovely"),
        ("Press 1️⃣ or #️⃣ now", "Press or now"),
        ("Love it ❤️ ✅ 👉 ⭐ ☀️", "Love it"),
        ("Paris → London", "Paris to London"),
        ("9am→5pm", "9am to 5pm"),
        ("Eggs \u2022 milk", "Eggs milk"),
    ],
)
def test_emoji_and_pictographs_are_removed(text: str, expected: str) -> None:
    assert speakable(text) == expected


def test_a_table_reads_row_by_row_with_cells_joined_by_commas() -> None:
    table = "| Fruit | Color |\n|:---|---:|\n| **Apple** | red |\n| Banana | |\n\nThat's it."
    assert speakable(table) == "Fruit, Color. Apple, red. Banana. That's it."


def test_fenced_code_keeps_its_lines_without_the_fences() -> None:
    text = "Try this:\n```python\nx = 2 * 3\nprint(x)  # **not** markup\n```\nDone"
    assert speakable(text) == "Try this: x = 2 * 3. print(x) # **not** markup. Done"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("line one\nline two", "line one line two"),
        ("One.\n\nTwo", "One. Two"),
        ("Para\n\nNext para", "Para. Next para"),
        ("  lots   of \t space  \r\n here  ", "lots of space here"),
        ("> quoted *text*\n> goes on", "quoted text goes on"),
        ("Above\n\n---\n\n* * *\nBelow", "Above. Below"),
    ],
)
def test_newlines_and_whitespace_become_single_spaces(text: str, expected: str) -> None:
    assert speakable(text) == expected


def test_pushes_hold_back_only_what_markup_needs() -> None:
    filt = SpeakableText()
    assert filt.push("Hello") == "Hello"
    assert filt.push(" world") == " world"
    assert filt.push(" **") == ""
    assert filt.push("bo") == " bo"
    assert filt.push("ld**") == "ld"
    assert filt.push(" and 4") == " and"
    assert filt.push("2 ") == " 42"
    assert filt.push("things.") == " things."
    assert filt.flush() == ""


def test_a_flushed_filter_starts_the_next_reply_fresh() -> None:
    filt = SpeakableText()
    assert filt.push("- one\n- two **bo") + filt.flush() == "one, two bo."
    assert filt.push("# Next") + filt.flush() == "Next."
    assert filt.flush() == ""


@pytest.mark.parametrize("text", DOCUMENTS)
def test_any_chunking_says_the_same_as_the_whole_text(text: str) -> None:
    rng = random.Random(len(text))
    whole = speakable(text)
    assert stream(text, list(range(1, len(text)))) == whole
    for _ in range(200):
        assert stream(text, token_cuts(text, rng)) == whole


def test_any_chunking_of_markup_soup_says_the_same() -> None:
    rng = random.Random(7)
    alphabet = [*"ab h*_`~[]()!#|-+>=\n\n  1.2):/\\ttps", "😊", "\ufe0f", "\u200d", "\u20e3", "→", "\u2022"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert stream(text, token_cuts(text, rng)) == speakable(text), repr(text)


@pytest.mark.parametrize("text", ["[" + "x" * 1000, "|" + "-" * 1000 + " x", "- " * 500 + "x", "h" * 1000])
def test_text_held_back_stays_bounded(text: str) -> None:
    filt = SpeakableText()
    said = 0
    for pos, char in enumerate(text, start=1):
        said += len(filt.push(char))
        assert pos - said <= 210
    assert said + len(filt.flush()) >= len(text) - 2


def test_long_replies_take_linear_time() -> None:
    reply = "\n".join(DOCUMENTS) * 200
    started = time.perf_counter()
    said = speakable(reply)
    assert time.perf_counter() - started < 10.0
    assert said.count("Apple") == 400
