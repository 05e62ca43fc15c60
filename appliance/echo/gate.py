"""What the canceller leaves of the echo is kept from sounding like a user.

An echo canceller takes out most of the speaker's sound once it has converged, but not before, and not for
a while after the path moved (the speaker ran dry, the microphone lost a block). What is left is the
reply's own voice, quieter: a VAD hears speech in it, and the agent pauses its reply for a user who is not
there. While the speaker plays, the gate lets a block through only if the microphone heard more than the
echo the speaker can make there (Geigel's double-talk rule: the echo's level is measured as the speaker
plays), and more than the room's own noise: the user talking over the reply. Other blocks are silence,
whatever the canceller left in them.
The user must then speak a little louder than the echo to be heard over the reply; between replies, and in
the reply's pauses, nothing is held back.
"""

from __future__ import annotations

import collections

import numpy as np

TAIL_BLOCKS = 50
"""10 ms blocks of the speaker's past that still echo: the room's tail, the canceller's lead, and a path
whose delay wanders (through a sound server, by 25 ms within seconds, measured on the test card)."""
UNKNOWN_ECHO_DB = 0.0
"""How loud the echo is taken to be before it is measured: as loud as what was played."""
MEASURED_BLOCKS = 1000
"""Blocks of echo alone kept (about 10 s of playback) to measure how loudly the microphone hears it."""
ECHO_SHARE = 90.0
"""The echo's level is the one that all but the loudest tenth of those blocks stayed under."""
MIN_MEASURED = 50
"""Blocks measured before the measurement replaces the assumed level."""
REMEASURE = 50
"""Blocks between two computations of that level."""
DOUBLE_TALK_DB = 3.0
"""How much louder than the speaker's echo the microphone must be for a block to count as the user."""
OPEN_AFTER = (2, 3)
"""The gate opens when that many of the last blocks were that loud: the echo alone crosses the bar in single
blocks and short runs, a voice in syllables. Measured on 33 s of a reply's echo on the test card: with one
block at 2 dB, 65 blocks of residue above -50 dBFS passed, up to 16 within half a second; with two of three
at 3 dB, none."""
NOISE_MARGIN_DB = 10.0
"""How much louder than the room (the microphone while the speaker is silent) a block must also be to count as
the user. At a reply's first syllable, after silence, the speaker is barely louder than nothing, so the bar set
by the echo is lower than the room's own noise: without this, the noise opened the gate there and let through
the echo that followed, which the canceller had not yet relearned (in a rig run: 13 openings in 10 replies,
their echo up to 70 dB, and replies paused for it about two seconds in, where the first clause ends)."""
NOISE_BLOCKS = 1000
"""Blocks of the speaker's silence kept (10 s) to measure the room's noise."""
NOISE_SHARE = 10.0
"""The room's noise is the level a tenth of those blocks stayed under: the user's requests to a silent device
are among them, and even while they speak, a tenth of their blocks are the gaps between words. Blocks of
digital silence are not among them: a microphone that gates its silence, or the test card playing a clip's
padding, made a tenth of them silence, and the room's bar fell to nothing (in a rig run, the reply's start
then opened the gate for its own echo, and a reply paused for it)."""
SILENT_POWER = 1.0
"""A speaker whose recent blocks were no louder than this (a sample's last bit, -90 dBFS) is silent: a sound
card or a converter may turn silence into a bit of noise, and the gate must still tell the speaker's pauses,
where the room is measured and the hangover runs out, from its words. A microphone block no louder is digital
silence, not the room."""
HANGOVER_BLOCKS = 30
"""Blocks the gate stays open after one that had the user in it (300 ms): the quieter sounds between their
loud ones are their words too, and a transcript of a voice with holes in it is not believed."""


class ResidualGate:
    """``apply(near, far, cleaned)``: ``cleaned``, or silence where the microphone heard no more than the
    speaker's echo."""

    def __init__(self, echo_db: float | None = None, double_talk_db: float = DOUBLE_TALK_DB) -> None:
        """``echo_db``: the echo's level relative to what was played, as calibrate measured it (None: unknown)."""
        self._echo_db = UNKNOWN_ECHO_DB if echo_db is None else echo_db
        self._double_talk = 10 ** (double_talk_db / 10)
        self._far: collections.deque[float] = collections.deque(maxlen=TAIL_BLOCKS)
        self._ratios = _Level(MEASURED_BLOCKS, ECHO_SHARE)
        """Microphone over loudest recent speaker power, per block of echo alone."""
        self._gain = 10 ** (self._echo_db / 10)
        self._loud: collections.deque[bool] = collections.deque(maxlen=OPEN_AFTER[1])
        self._room = _Level(NOISE_BLOCKS, NOISE_SHARE)
        self._floor = 0.0
        """The room's noise times the margin (power; 0 until the speaker has been silent)."""
        self._margin = 10 ** (NOISE_MARGIN_DB / 10)
        self._open = 0
        self.gated = 0
        """Blocks replaced with silence."""
        self.user = False
        """Whether the last block was let through as the user talking over the speaker."""

    def echo_gain(self) -> float:
        """How loudly the microphone hears the speaker (power ratio to the speaker's loudest recent block)."""
        return self._gain

    def apply(self, near: np.ndarray, far: np.ndarray, cleaned: np.ndarray) -> np.ndarray:
        """One 10 ms block: the microphone, the speaker, and the microphone after cancellation."""
        self._far.append(_power(far))
        loudest = max(self._far)
        before = _power(near)
        self.user = False
        if loudest <= SILENT_POWER:  # the speaker silent: nothing to hold back, and the hangover runs out meanwhile
            self._hear_room(before)
            self._loud.append(False)
            self._open = max(0, self._open - 1)
            return cleaned
        loud = before > max(loudest * self.echo_gain() * self._double_talk, self._floor)
        self._loud.append(loud)
        if loud and sum(self._loud) >= OPEN_AFTER[0]:
            self._open = HANGOVER_BLOCKS
            self.user = True
            return cleaned  # the user: not measured as echo, or their voice would raise the bar against them
        if self._open:
            self._open -= 1
            self.user = True
            return cleaned
        # measured whether or not it crossed the bar: leaving out the blocks above it would make each new
        # level lower than the last, until the echo itself opened the gate (as it did, on the test card)
        self._measure(before, loudest)
        self.gated += 1
        return np.zeros_like(cleaned)

    def _hear_room(self, near: float) -> None:
        if near <= SILENT_POWER:
            return  # digital silence (a gated or muted input, a clip's padding) tells nothing of the room
        level = self._room.add(near)
        if level is not None:
            self._floor = level * self._margin

    def _measure(self, near: float, far: float) -> None:
        level = self._ratios.add(near / far)
        if level is not None:
            self._gain = level


class _Level:
    """The level of the last ``size`` values: the one all but ``100 - share`` percent of them stayed under,
    worked out again every ``REMEASURE`` values once ``MIN_MEASURED`` are in (None between)."""

    def __init__(self, size: int, share: float) -> None:
        self._values: collections.deque[float] = collections.deque(maxlen=size)
        self._share = share
        self._since = 0

    def add(self, value: float) -> float | None:
        self._values.append(value)
        self._since += 1
        if self._since < REMEASURE or len(self._values) < MIN_MEASURED:
            return None
        self._since = 0
        return float(np.percentile(self._values, self._share))


def _power(block: np.ndarray) -> float:
    x = block.astype(np.float64)
    return float(np.dot(x, x)) / max(x.size, 1)
