"""Turn-taking policy without I/O: when the wake model runs, what counts as words, what the user heard."""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass

from appliance.audio.frame import SAMPLE_RATE

_NON_SPEECH = re.compile(r"\[[^\]]*\]|\([^)]*\)|\*[^*]*\*")
_BACKCHANNEL = frozenset({"uh-huh", "uh", "um", "ah", "oh", "huh", "er", "eh"})
_HUM = re.compile(r"^[mnh]+(-[mnh]+)*$")
"""Mm, hmm, mhm, mm-hmm, MMMM: a hum, however the recognizer spells it."""


def has_words(transcript: str) -> bool:
    """True if the transcript holds a word that asks for a response (not a cough, a hum or a tag)."""
    text = _NON_SPEECH.sub(" ", transcript).lower()
    words = [w.strip(".,!?;:'\"-") for w in text.split()]
    words = [w for w in words if any(c.isalnum() for c in w)]
    return any(w not in _BACKCHANNEL and not _HUM.match(w) for w in words)


MIN_TURN_AUDIO = 0.4
"""An utterance shorter than this after the wake word (with its 0.12 s of kept silence) is the wake
phrase's tail, not a question; a talk-over shorter than this after the pause is not heard again."""
MIN_TALK_OVER_CONFIDENCE = math.exp(-1.0)
"""Whisper's own failure mark (``logprob_thold`` -1): below it the decoder was guessing."""
MAX_COMPRESSION_RATIO = 2.4
"""Whisper's other failure mark: text this repetitive is a decoding loop, not speech."""


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def confirms_interruption(transcript: str, confidence: float) -> bool:
    """Talk-over cuts the reply only when it was clearly words: a hum or a cough that whisper turns into
    a low-confidence or looping guess resumes the reply instead."""
    return (
        has_words(transcript)
        and confidence >= MIN_TALK_OVER_CONFIDENCE
        and compression_ratio(transcript) <= MAX_COMPRESSION_RATIO
    )


@dataclass(frozen=True)
class Spoken:
    """A sentence sent to the speaker, and how long it sounds."""

    text: str
    seconds: float


def heard_text(spoken: list[Spoken], position: float) -> str:
    """The part of the reply that played before ``position`` seconds: whole sentences, then the
    share of the next one's words in proportion to its played time."""
    heard: list[str] = []
    elapsed = 0.0
    for sentence in spoken:
        if elapsed + sentence.seconds <= position + 1e-6:
            heard.append(sentence.text)
            elapsed += sentence.seconds
            continue
        words = sentence.text.split()
        share = max(0.0, position - elapsed) / sentence.seconds if sentence.seconds else 0.0
        partial = words[: int(len(words) * share)]
        if partial:
            heard.append(" ".join(partial))
        break
    return " ".join(t.strip() for t in heard).strip()


class WakeGate:
    """Runs the wake-word model only around sound the VAD finds speech-like.

    Fed with every VAD window, it answers which stretch of audio (by sample position) the wake model
    should score now: when it opens, the pre-roll before the sound first, so the model sees the whole phrase.
    It also maps the wake model's own clock back to stream positions.
    """

    def __init__(self, threshold: float, hold: float, pre_roll: float) -> None:
        self.threshold, self.hold, self.pre_roll = threshold, hold, pre_roll
        self._open_until = -1.0
        self._fed_to = 0
        self._fed_total = 0
        self._bursts: list[tuple[int, int]] = []
        """(samples fed to the model before the burst, stream position where the burst starts)."""

    def update(self, t: float, probability: float) -> tuple[int, int] | None:
        """VAD window ending at stream time ``t``: the sample range to score now, if any."""
        if probability >= self.threshold:
            self._open_until = t + self.hold
        if t > self._open_until:
            return None
        end = round(t * SAMPLE_RATE)
        begin = max(self._fed_to, end - round(self.pre_roll * SAMPLE_RATE), 0)
        if begin >= end:
            return None
        if begin != self._fed_to or not self._bursts:
            self._bursts.append((self._fed_total, begin))
            self._bursts = self._bursts[-64:]
        self._fed_to = end
        self._fed_total += end - begin
        return begin, end

    def stream_position(self, model_seconds: float) -> int:
        """The stream position of a time on the wake model's clock (the end of a detection)."""
        fed = round(model_seconds * SAMPLE_RATE)
        for fed_at, stream_at in reversed(self._bursts):
            if fed >= fed_at:
                return stream_at + (fed - fed_at)
        return fed
