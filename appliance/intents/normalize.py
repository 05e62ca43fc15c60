"""A transcript made plain for the grammar: lower case, no punctuation, contractions spelled out, numbers as
digits ("Set a timer for five minutes, please." -> "set a timer for 5 minutes"), fillers and politeness at
either end dropped."""

from __future__ import annotations

import re

from text_to_num import alpha2digit

_HALF_AFTER_NUMBER = re.compile(r"(\d) ?(?:½|1/2)")
_PERCENT = re.compile(r"(\d) ?%")
_A_HUNDRED = re.compile(r"\ban? (hundred|thousand)\b")
_SECOND = re.compile(r"\bsecond\b")
_SECOND_KEPT = "sekond"
"""Stands in for "second" while numbers are read, which would make "thirty second" "32nd"."""
_PUNCTUATION = re.compile(r"[^a-z0-9'./ ]+|(?<!\d)[./]|[./](?!\d)")
_CONTRACTIONS = (
    (re.compile(r"\b(what|that|it|how|there|here|who|where|when)'?s\b"), r"\1 is"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'d\b"), " would"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"\blet's\b"), "let us"),
)
_SPACES = re.compile(r"\s+")
_ADDRESS = "jarvis|alexa|mycroft|rhasspy|nabu"
"""The names in the shipped wake phrases: said over a reply ("hey Jarvis, stop"), the wake phrase reaches the
transcript, and the request is what follows it."""
_CALLED = re.compile(r"^\s*(?:hey|hi|hello|ok|okay|o\.k\.)[,.!]?\s+[\w'-]+[,.!]+\s+", re.IGNORECASE)
"""A greeting and a name set off by a comma or a stop before the request ("Hey Jervis, stop."): the wake
phrase as whisper heard it over a reply, whatever it made of the name."""
_LEADING = re.compile(
    r"^(?:(?:hey|hi|hello|ok|okay|um+|uh+|uhm|hm+|er+|erm|ah+|oh|so|well|alright|all right|please|just|sorry|"
    rf"excuse me|now|and|{_ADDRESS}) |(?:can|could|would|will) you (?:please )?|i (?:want|need|would like) you to )+"
)
_TRAILING = re.compile(r"(?: (?:please|thanks|thank you(?: very much)?|for me|now|right now|ok|okay))+$")


_CLAUSE_MARK = re.compile(r"[,.!?;:]+\s+")
MAX_ADDRESS_WORDS = 3
"""Words before the request that can be the wake phrase said over a reply, however it was heard."""


def request_after_address(transcript: str) -> str | None:
    """The request after a short address set off by a comma or a stop, or None if there is none: said over a
    reply, "Hey Jarvis, stop." reaches Whisper with the reply's echo under the wake phrase, which comes out
    as anything ("8th of this, stop."), while the command after the pause comes out clearly. ``_CALLED``
    takes the greeting-and-name form off any request; this takes whatever the address came out as, before a
    last clause."""
    parts = [p for p in _CLAUSE_MARK.split(transcript.strip()) if p.strip()]
    if len(parts) < 2:
        return None
    if len(" ".join(parts[:-1]).split()) > MAX_ADDRESS_WORDS:
        return None
    return parts[-1].strip()


def normalize(transcript: str) -> str:
    """The transcript as the grammar reads it."""
    text = _CALLED.sub("", transcript).lower().replace("\u2019", "'").replace("\u2018", "'").replace("-", " ")
    text = _HALF_AFTER_NUMBER.sub(r"\1 and a half", text).replace("½", " half ")
    text = _PERCENT.sub(r"\1 percent", text)
    text = _PUNCTUATION.sub(" ", text)
    text = _A_HUNDRED.sub(r"one \1", text)
    text = _SECOND.sub(_SECOND_KEPT, text)
    text = str(alpha2digit(text, "en", threshold=0)).replace(_SECOND_KEPT, "second")
    for pattern, spelled in _CONTRACTIONS:
        text = pattern.sub(spelled, text)
    text = _SPACES.sub(" ", text.replace("'", "")).strip()
    text = _LEADING.sub("", _collapse_loop(text))
    return _TRAILING.sub("", text)


def _collapse_loop(text: str) -> str:
    """One phrase for Whisper's decoding loop on a short clip ("repeat that repeat that repeat that repeat")."""
    words = text.split()
    for n in range(1, len(words) // 2 + 1):
        phrase = words[:n]
        if all(words[i] == phrase[i % n] for i in range(len(words))):
            return " ".join(phrase)
    return text
