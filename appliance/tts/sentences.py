"""Cut a stream of LLM tokens into sentences, so speech starts before the reply is written."""

from __future__ import annotations

import re

import pysbd

_CLAUSE_END = re.compile(r"[,;:\u2013\u2014]\s")
_SPEAKABLE = re.compile(r"[A-Za-z0-9]")


class SentenceStream:
    """Push text as it arrives; take the sentences that are complete.

    pysbd finds the boundaries (abbreviations, decimals, initials); a sentence counts as complete
    once text after it has started. The first piece may be cut at a clause boundary (a comma) when
    it is already long, so the first audio comes sooner.
    """

    def __init__(self, *, min_sentence_chars: int = 12, first_clause_chars: int = 40) -> None:
        self._segmenter = pysbd.Segmenter(language="en", clean=False, char_span=False)
        self._buffer = ""
        self._min = min_sentence_chars
        self._first_clause = first_clause_chars
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
        if not out and self._emitted == 0 and len(self._buffer) >= self._first_clause:
            ends = [m.end() for m in _CLAUSE_END.finditer(self._buffer)]
            if ends and ends[-1] >= self._min:
                cut = ends[-1]
                out.append(self._buffer[:cut])
                self._buffer = self._buffer[cut:]
        return self._clean(out)

    def flush(self) -> list[str]:
        """The rest, at the end of the reply."""
        rest, self._buffer = self._buffer, ""
        return self._clean([rest])

    def _clean(self, parts: list[str]) -> list[str]:
        cleaned = [" ".join(p.split()) for p in parts]
        cleaned = [p for p in cleaned if _SPEAKABLE.search(p)]
        self._emitted += len(cleaned)
        return cleaned
