"""Words read for how a sentence goes on: the turn detector's text cue, and where the first spoken piece of a reply
may end."""

from __future__ import annotations

import re

_OPEN_ENDINGS = frozenset(
    "a an the my your our their its and or but nor because than if whether of to for in into about with "
    "um uh uhm er erm".split()
)
"""Last words that leave a sentence open: articles, possessives, conjunctions, the prepositions that take
what follows ("the weather in", "a timer for"), and fillers. The prepositions that also end questions ("what
is it for") make those wait the longest silence, which costs a second and cuts nothing; "on", "from",
"at", "up", "off" and "like" end too many ("what is going on") to be here."""
_WORD_CHARS = re.compile(r"[^a-z']+")


def leaves_open(transcript: str) -> bool:
    """Whether the transcript so far ends on a word no sentence ends on ("What is the capital city of")."""
    return _last_word(transcript) in _OPEN_ENDINGS


_TAKE_MORE = frozenset(
    "is are was were be been being am will would can could shall should may might must has have had do does did "
    "not very too so just".split()
)
"""Words a sentence can end on ("that is what it is") but that usually take what follows ("the oven is"):
no reason to hold a turn, but a poor place to end a spoken piece."""


def ends_mid_phrase(text: str) -> bool:
    """Whether ``text`` ends on a word that leaves the sentence open or usually takes what follows: a place a
    piece of a sentence spoken on its own should not end."""
    last = _last_word(text)
    return last in _OPEN_ENDINGS or last in _TAKE_MORE


def _last_word(text: str) -> str:
    """The last word, lower case, without punctuation ("" if there is none)."""
    words = _WORD_CHARS.sub(" ", text.lower()).split()
    return words[-1] if words else ""
