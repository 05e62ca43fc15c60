"""Cut a stream of LLM tokens into sentences, so speech starts before the reply is written."""

from __future__ import annotations

import re

import pysbd

from appliance.utils.words import ends_mid_phrase

_CLAUSE_END = re.compile(r"[,;:\u2013\u2014]\s")
_WORD = re.compile(r"\S+\s")
"""A word that is complete: the whitespace after it has arrived."""
_SPEAKABLE = re.compile(r"[A-Za-z0-9]")
MIN_CLAUSE_WORDS = 3
"""A first clause shorter than this ("Sure,") is not cut off: its audio would run out before the next
sentence is written, and the user would hear a gap after it."""
MAX_FIRST_WORDS = 6
"""The first piece goes past ``first_words`` while its last word ends mid-phrase ("The oven is"), up to
this many words."""


class SentenceStream:
    """Push text as it arrives; take the sentences that are complete.

    pysbd finds the boundaries (abbreviations, decimals, initials); a sentence counts as complete
    once text after it has started. The first piece is short, so the first audio comes sooner: the
    words up to the first comma (or other clause mark) after at least ``MIN_CLAUSE_WORDS`` words, or the
    first ``first_words`` words (more, up to ``MAX_FIRST_WORDS``, while the last one ends mid-phrase),
    whichever comes first. The default model writes 10 to 20 words a second on 2 cores: each word less in
    the first piece is 50 to 100 ms less before the first audio.

    The second piece has only the first's short audio to be written and synthesized in: it ends at its
    first clause mark too (after ``MIN_CLAUSE_WORDS`` words), so a long first sentence ("To make a cup | of
    tea, first boil the water, then...") is not a gap of silence after the first words. Later pieces are
    whole sentences, for their intonation; the audio before them covers their writing.
    """

    def __init__(self, *, min_sentence_chars: int = 12, first_words: int = 3) -> None:
        self._segmenter = pysbd.Segmenter(language="en", clean=False, char_span=False)
        self._buffer = ""
        self._min = min_sentence_chars
        self._first_words = first_words
        self._emitted = 0

    def push(self, text: str) -> list[str]:
        self._buffer += text
        parts = self._segmenter.segment(self._buffer) if self._buffer.strip() else []
        out: list[str] = []
        if len(parts) > 1:
            ready = parts[:-1]
            tail = parts[-1]
            pending = ""
            for part in ready:
                pending += part
                if len(pending.strip()) >= self._min:
                    out.append(pending)
                    pending = ""
            self._buffer = pending + tail
        if not out and self._first_words > 0 and self._emitted < 2:
            cut = self._cut(self._buffer, by_words=self._emitted == 0)
            if cut:
                out.append(self._buffer[:cut])
                self._buffer = self._buffer[cut:]
        return self._clean(out)

    def _cut(self, text: str, *, by_words: bool) -> int:
        """Where the piece under way ends early (0: not yet): after its first clause mark past
        ``MIN_CLAUSE_WORDS`` words, or, for the first piece (``by_words``), after its first words."""
        limit = max(self._first_words, MAX_FIRST_WORDS)
        for words, word in enumerate(_WORD.finditer(text), start=1):
            if by_words and (words >= limit or (words >= self._first_words and not ends_mid_phrase(word.group()))):
                return word.end()
            if words >= MIN_CLAUSE_WORDS and _CLAUSE_END.match(text, word.end() - 2):
                return word.end()
        return 0

    def flush(self) -> list[str]:
        """The rest, at the end of the reply."""
        rest, self._buffer = self._buffer, ""
        return self._clean([rest])

    def _clean(self, parts: list[str]) -> list[str]:
        cleaned = [" ".join(p.split()) for p in parts]
        cleaned = [p for p in cleaned if _SPEAKABLE.search(p)]
        self._emitted += len(cleaned)
        return cleaned
