"""An LLM reply made fit to read aloud, as it streams: Markdown and emoji out, the words and pauses kept."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, AsyncIterator

from appliance.agent import speakable_chars as glyphs


class _Line(enum.Enum):
    PARA = "para"
    ITEM = "item"
    HEADING = "heading"
    ROW = "row"
    CODE = "code"
    FENCE = "fence"
    BREAK = "break"
    """A rule, a table's separator row, an empty heading: says nothing, ends the block above."""


class SpeakableText:
    """Push an LLM reply as it streams; take the text to speak.

    Markup goes, its words stay: ``**bold**``, ``__bold__``, ``*it*``, ``_it_``, ``~~strike~~`` and
    ```code``` lose their markers. ``*`` and ``_`` count as markers only where they open or close emphasis
    (CommonMark's flanking rules, never inside a word): ``snake_case``, ``2*3`` and ``5 * 3`` stay.
    Fenced code loses its fence lines; each line inside is read as a sentence. ``[text](url)`` reads
    "text"; a bare URL loses its ``http://`` or ``https://``. Emoji (with their joiners, variation
    selectors, skin tones, keycaps and flags), dingbats, shapes and bullets go; a rightward arrow reads
    "to".

    Lines become pauses: a heading, a table row (cells joined by commas) and a code line end with a
    period; a list item (``-``, ``*``, ``+``, ``1.``, ``2)``, a bullet or an emoji at the line start) ends
    with a comma, the last of its list with a period. Numbered items lose their numbers. A blank line
    ends a sentence. No mark is added where the text already ends with one. Other newlines, and every
    run of whitespace, become one space.

    Plain prose passes through unchanged. Text is held back only while a marker's meaning is open (a
    ``*`` before the next character, a line start before its marker, link text before ``](``), about
    ``glyphs.LOOKAHEAD`` characters at most, and a space between words goes out with the word after it;
    so the pushes joined are ``speakable(text)`` however the reply was cut.
    """

    def __init__(self) -> None:
        self._reset()

    def push(self, chunk: str) -> str:
        """Take the next piece of the reply; return what can be said now."""
        self._buf += chunk
        self._run()
        return self._take()

    def flush(self) -> str:
        """The rest, at the end of the reply; the filter is then ready for the next one."""
        self._final = True
        self._run()
        self._close_block(None)
        rest = self._take()
        self._reset()
        return rest

    def _reset(self) -> None:
        self._buf = ""
        self._pos = 0
        self._final = False
        self._out: list[str] = []
        self._at_start = True
        """At a line's start, its kind not yet known."""
        self._line = _Line.PARA
        self._fresh = False
        """The current line has said nothing yet."""
        self._block: _Line | None = None
        """The kind of the last line that said something; its closing mark is still to come."""
        self._gap = False
        """A blank line, rule or fence since that line."""
        self._skip = False
        """The rest of the line says nothing (a fence's info string)."""
        self._fence = ""
        """Inside a fenced code block: its fence character."""
        self._prev = "\n"
        self._code = 0
        """Inside a code span: the length of its opening backtick run."""
        self._link = False
        self._url = 0
        """Depth of the link target's parentheses being skipped."""
        self._cell = False
        """A table cell ended: a comma goes before the next words."""
        self._open = {"*": 0, "_": 0}
        self._space = glyphs.NO_SPACE
        self._started = False
        self._last = ""
        """The last character said, closing quotes and brackets aside."""

    def _take(self) -> str:
        text = "".join(self._out)
        self._out.clear()
        return text

    def _run(self) -> None:
        while self._pos < len(self._buf) and self._step():
            pass
        self._buf = self._buf[self._pos :]
        self._pos = 0

    def _char(self, j: int) -> str:
        """The character at ``j``; the end of the text reads as a newline."""
        return self._buf[j] if j < len(self._buf) else "\n"

    def _needs(self, j: int) -> bool:
        """True if the decision needs the character at ``j`` and it has not arrived yet."""
        return j >= len(self._buf) and not self._final

    def _run_end(self, i: int, chars: str) -> int | None:
        """Where the run of ``chars`` from ``i`` ends (at most ``glyphs.LOOKAHEAD`` on); None if not known yet."""
        buf = self._buf
        end = min(len(buf), i + glyphs.LOOKAHEAD)
        j = i
        while j < end and buf[j] in chars:
            j += 1
        return None if self._needs(j) else j

    def _advance(self, n: int) -> None:
        self._pos = min(len(self._buf), self._pos + n)
        self._prev = self._buf[self._pos - 1]

    def _step(self) -> bool:
        """Handle the text at the current position; False if it must wait for more."""
        c = self._buf[self._pos]
        if self._at_start:
            return self._start_line(c)
        if c == "\n":
            self._end_line()
        elif self._skip:
            end = self._buf.find("\n", self._pos)
            self._pos = len(self._buf) if end < 0 else end
        elif self._url:
            self._url += (c == "(") - (c == ")")
            self._advance(1)
        else:
            return self._inline(c)
        return True

    def _start_line(self, c: str) -> bool:
        if c in glyphs.INDENT or (c == ">" and not self._fence):
            self._pos += 1
            return True
        if c == "\n":
            self._gap = True
            self._pos += 1
            return True
        start = self._classify(c)
        if start is None:
            return False
        kind, n = start
        self._pos += n
        self._at_start = False
        self._prev = " "
        if kind is _Line.FENCE:
            self._fence = "" if self._fence else c
        if kind in (_Line.FENCE, _Line.BREAK):
            self._gap = True
            self._skip = True
        else:
            self._line = kind
            self._fresh = True
        return True

    def _classify(self, c: str) -> tuple[_Line, int] | None:
        """The kind of the line starting here and the length of its marker; None if not known yet."""
        i = self._pos
        if self._fence or c in "`~":
            if self._fence and c != self._fence:
                return _Line.CODE, 0
            j = self._run_end(i, c)
            if j is None:
                return None
            if j - i >= 3:
                return _Line.FENCE, j - i
            return (_Line.CODE if self._fence else _Line.PARA), 0
        if c == "#":
            j = self._run_end(i, "#")
            if j is None:
                return None
            after = self._char(j)
            if j - i <= 6 and after in " \t":
                return _Line.HEADING, j - i + 1
            return (_Line.BREAK, j - i) if j - i <= 6 and after == "\n" else (_Line.PARA, 0)
        if c in "-*_+=":
            j = self._run_end(i, c + " \t")
            if j is None:
                return None
            if self._char(j) == "\n" and c != "+" and self._buf.count(c, i, j) >= 3:
                return _Line.BREAK, j - i
            if c in "-*+" and self._char(i + 1) in " \t\n":
                return _Line.ITEM, 1
            return _Line.PARA, 0
        if c == "|":
            j = self._run_end(i, "|-: \t")
            if j is None:
                return None
            return (_Line.BREAK, j - i) if self._char(j) == "\n" else (_Line.ROW, 1)
        if c in glyphs.DIGITS:
            j = self._run_end(i, glyphs.DIGITS)
            if j is None:
                return None
            after = self._char(j)
            if after in glyphs.KEYCAP_MARKS:
                return _Line.ITEM, 0
            if j - i <= 3 and after in ".)":
                if self._needs(j + 1):
                    return None
                if self._char(j + 1) in " \t\n":
                    return _Line.ITEM, j - i + 1
            return _Line.PARA, 0
        if c in glyphs.RIGHT_ARROWS:
            return _Line.ITEM, 1
        return (_Line.ITEM if glyphs.is_symbol(c) else _Line.PARA), 0

    def _end_line(self) -> None:
        self._pos += 1
        self._at_start = True
        self._fresh = self._skip = self._link = self._cell = False
        self._url = self._code = 0
        self._open = {"*": 0, "_": 0}
        self._space = glyphs.HARD_SPACE
        self._prev = "\n"

    def _inline(self, c: str) -> bool:
        i = self._pos
        if c.isspace():
            self._space = glyphs.HARD_SPACE
            self._advance(1)
            return True
        if glyphs.is_invisible(c):
            self._pos += 1
            return True
        if c in glyphs.KEYCAP_BASES:
            if self._needs(i + 1):
                return False
            if self._char(i + 1) in glyphs.KEYCAP_MARKS:
                self._space = glyphs.SOFT_SPACE
                self._advance(1)
                return True
        if c in glyphs.RIGHT_ARROWS:
            self._space = glyphs.HARD_SPACE
            self._emit("to")
            self._space = glyphs.HARD_SPACE
            self._advance(1)
        elif glyphs.is_symbol(c):
            self._space = glyphs.SOFT_SPACE
            self._advance(1)
        elif self._link and c == "]":
            if self._needs(i + 1):
                return False
            self._link = False
            self._url = int(self._char(i + 1) == "(")
            self._advance(1 + self._url)
        elif self._fence or (self._code and c != "`"):
            self._say(i, i + 1)
        else:
            return self._markup(c)
        return True

    def _markup(self, c: str) -> bool:
        """Markdown's inline markers: emphasis, code, strikethrough, escapes, links, cells, URL schemes."""
        i = self._pos
        if c in "*_`~":
            j = self._run_end(i, c)
            if j is None:
                return False
            if c in "*_":
                self._emphasis(c, i, j)
            elif (c == "~" and j - i < 2) or (c == "`" and self._code not in (0, j - i)):
                self._say(i, j)
            else:
                if c == "`":
                    self._code = 0 if self._code else j - i
                self._advance(j - i)
            return True
        if c in "\\!" and self._needs(i + 1):
            return False
        if c == "\\" and self._char(i + 1) in glyphs.ASCII_PUNCT:
            self._pos += 1
            self._say(i + 1, i + 2)
        elif c in "![" and not self._link:
            start = i + (c == "!")
            link = self._link_at(start) if self._char(start) == "[" else False
            if link is None:
                return False
            if link:
                self._link = True
                self._advance(start - i + 1)
            else:
                self._say(i, i + 1)
        elif c == "#" and self._line is _Line.HEADING and self._prev.isspace():
            j = self._run_end(i, "# \t")
            if j is None:
                return False
            if self._char(j) == "\n":
                self._advance(j - i)
            else:
                self._say(i, i + 1)
        elif c == "|" and self._line is _Line.ROW:
            self._cell = not self._fresh
            self._advance(1)
        elif c == "h" and not self._prev.isalnum():
            return self._scheme(i)
        else:
            buf, j = self._buf, i + 1
            while j < len(buf) and buf[j] in glyphs.PLAIN:
                j += 1
            self._say(i, j)
        return True

    def _emphasis(self, c: str, i: int, j: int) -> None:
        """Drop a run of ``*`` or ``_`` that opens or closes emphasis; keep it as text otherwise."""
        before, after = self._prev, self._char(j)
        left = not after.isspace() and (after.isalnum() or not before.isalnum())
        right = not before.isspace() and (before.isalnum() or not after.isalnum())
        opened = self._open[c]
        if left and right:
            opens, closes = False, c == "*" and opened > 0
        else:
            opens, closes = left, right and opened > 0
        if closes or opens:
            self._open[c] += -1 if closes else 1
            self._advance(j - i)
        else:
            self._say(i, j)

    def _link_at(self, i: int) -> bool | None:
        """True if the ``[`` at ``i`` opens a link: ``](`` follows on the same line, within the lookahead."""
        buf = self._buf
        end = i + 1 + glyphs.LOOKAHEAD
        j = i + 1
        while j < len(buf) and j < end:
            ch = buf[j]
            if ch == "]":
                return None if self._needs(j + 1) else self._char(j + 1) == "("
            if ch in "[\n":
                return False
            if ch == "\\":
                if self._needs(j + 1):
                    return None
                j += 1 if self._char(j + 1) not in glyphs.ASCII_PUNCT else 2
                continue
            j += 1
        return False if j >= end or self._final else None

    def _scheme(self, i: int) -> bool:
        """Drop ``http://`` or ``https://`` at a word's start."""
        rest = self._buf[i : i + 8]
        for scheme in glyphs.SCHEMES:
            if rest.startswith(scheme):
                self._advance(len(scheme))
                return True
        if not self._final and len(rest) < 8 and any(s.startswith(rest) for s in glyphs.SCHEMES):
            return False
        self._say(i, i + 1)
        return True

    def _say(self, i: int, j: int) -> None:
        self._emit(self._buf[i:j])
        self._advance(j - i)

    def _emit(self, text: str) -> None:
        """Say ``text``, after the mark that closes the block above and the space before it."""
        if self._fresh:
            self._fresh = False
            self._close_block(self._line)
            self._block = self._line
            self._gap = False
        if self._cell:
            self._cell = False
            self._stop(",")
            self._space = glyphs.HARD_SPACE
        if (
            self._space
            and self._started
            and (self._space == glyphs.HARD_SPACE or text[0] not in glyphs.NO_SPACE_BEFORE)
        ):
            self._out.append(" ")
        self._space = glyphs.NO_SPACE
        self._out.append(text)
        self._started = True
        for ch in reversed(text):
            if ch not in glyphs.CLOSERS:
                self._last = ch
                break

    def _close_block(self, following: _Line | None) -> None:
        """End the last line that said something, now that the next one (or the end) is known."""
        block = self._block
        if block is None:
            return
        if following is None:
            mark = "" if block is _Line.PARA else "."
        elif self._gap or block not in (_Line.ITEM, _Line.PARA):
            mark = "."
        elif block is _Line.ITEM:
            mark = "," if following is _Line.ITEM else "."
        else:
            mark = "" if following is _Line.PARA else "."
        if mark:
            self._stop(mark)

    def _stop(self, mark: str) -> None:
        if self._started and self._last not in glyphs.TERMINAL:
            self._out.append(mark)
            self._last = mark


def speakable(text: str) -> str:
    """The whole of ``text`` as it should be read aloud."""
    stream = SpeakableText()
    return stream.push(text) + stream.flush()


async def speakable_text(text: AsyncIterable[str]) -> AsyncIterator[str]:
    """``SpeakableText`` over a stream: what to speak, as soon as it is safe to (the default
    ``transcription_node``)."""
    reading = SpeakableText()
    async for chunk in text:
        out = reading.push(chunk)
        if out:
            yield out
    rest = reading.flush()
    if rest:
        yield rest
