"""The characters the speakable filter tells apart: what is never markup, what ends a pause, what a voice
cannot say (pictographs, arrows, the zero-width glue of emoji sequences)."""

from __future__ import annotations

import string

LOOKAHEAD = 200
"""The most characters held back to tell what a marker means; past that it reads as text."""
INDENT = frozenset(" \t\r\f\v")
DIGITS = "0123456789"
ASCII_PUNCT = frozenset(string.punctuation)
PLAIN = frozenset((set(string.ascii_letters) - {"h"}) | set(".,;:?'\"()-%$&/+=@^<>{}"))
"""Characters that are never part of markup, whatever surrounds them."""
TERMINAL = frozenset(".,;:!?…")
"""A line or cell ending in one of these needs no added pause."""
CLOSERS = frozenset("\"')]}\u00bb\u201d\u2019")
NO_SPACE_BEFORE = frozenset(".,;:!?…)]}")
KEYCAP_BASES = frozenset("0123456789#*")
KEYCAP_MARKS = frozenset("\ufe0f\u20e3")
RIGHT_ARROWS = frozenset("→⟶➔➜➡")
SCHEMES = ("https://", "http://")
SYMBOL_POINTS = frozenset({0x2022, 0x2023, 0x2043, 0x2219, 0x24C2, 0x3030, 0x303D, 0x3297, 0x3299})
INVISIBLE_POINTS = frozenset({0x200B, 0x200D, 0x2060, 0x20E3, 0xFEFF})

NO_SPACE, SOFT_SPACE, HARD_SPACE = 0, 1, 2
"""A space pending between words: none, one left by a removed symbol (dropped before punctuation), a real one."""


def is_symbol(ch: str) -> bool:
    """A pictograph, dingbat, arrow, shape or bullet: nothing a voice can say."""
    o = ord(ch)
    if o < 0x2000:
        return False
    return (
        0x1F000 <= o <= 0x1FFFF  # emoji, flags, skin tones, cards, mahjong
        or 0x2190 <= o <= 0x21FF  # arrows
        or 0x2300 <= o <= 0x23FF  # technical: watch, hourglass, alarm clock
        or 0x25A0 <= o <= 0x27BF  # shapes, miscellaneous symbols, dingbats
        or 0x27F0 <= o <= 0x27FF
        or 0x2900 <= o <= 0x297F
        or 0x2B00 <= o <= 0x2BFF
        or o in SYMBOL_POINTS
    )


def is_invisible(ch: str) -> bool:
    """Zero-width glue of emoji sequences: joiners, variation selectors, keycap and tag characters."""
    o = ord(ch)
    return o >= 0x200B and (o in INVISIBLE_POINTS or 0xFE00 <= o <= 0xFE0F or 0xE0000 <= o <= 0xE007F)
