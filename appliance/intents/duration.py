"""Durations as people say them, read from a normalized transcript (number words already turned into digits):
"5 minutes", "an hour and a half", "2 and a half minutes", "half an hour", "1 hour 30 minutes", "10 sec"."""

from __future__ import annotations

import re

UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "day": 86400.0,
    "days": 86400.0,
}
"""Seconds per unit word."""

_UNIT = "(?:" + "|".join(sorted(UNITS, key=len, reverse=True)) + r")\b"
_COUNT = r"(?:\d+(?:\.\d+)?|an?\b)"
_HALF = r"(?: and a half| and 1/2)"
_PART = (
    rf"(?P<count>{_COUNT})(?P<half_before>{_HALF})? ?(?P<unit>{_UNIT})(?P<half_after>{_HALF})?"
    r"|(?:a )?half (?:an? )?(?P<half_of>hour|minute|day)"
    r"|(?:a )?quarter (?:of )?(?:an )?hour"
    r"|3 quarters of an hour"
)
_PLAIN_PART = re.sub(r"\(\?P<\w+>", "(?:", _PART)
PATTERN = rf"(?:{_PLAIN_PART})(?:(?:,? and |, | )(?:{_PLAIN_PART}))*"
"""A duration inside a larger pattern (no named groups, so it can be embedded more than once)."""

_PART_RE = re.compile(_PART)
_SEPARATOR = re.compile(r",? and |, | ")


def parse_duration(text: str) -> float | None:
    """Seconds in ``text`` if all of it is a duration ("1 hour and 30 minutes" -> 5400), else None."""
    total, pos = 0.0, 0
    while True:
        part = _PART_RE.match(text, pos)
        if part is None or part.end() == pos:
            return None
        total += _seconds(part)
        pos = part.end()
        if pos == len(text):
            return total
        sep = _SEPARATOR.match(text, pos)
        if sep is None:
            return None
        pos = sep.end()


def _seconds(part: re.Match[str]) -> float:
    if part.group("half_of"):
        return UNITS[part.group("half_of")] / 2
    words = part.group(0)
    if "quarter" in words:
        return 2700.0 if words.startswith("3") else 900.0
    count = part.group("count")
    amount = 1.0 if count in ("a", "an") else float(count)
    if part.group("half_before") or part.group("half_after"):
        amount += 0.5
    return amount * UNITS[part.group("unit")]
