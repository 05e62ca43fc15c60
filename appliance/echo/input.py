"""The microphone with the speaker taken out: an audio input that wraps another one.

Every stage after it (wake word, VAD, STT, turn detector) hears the cleaned signal, and the agent does not
know it is there.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import AudioInput
from appliance.echo.base import BLOCK, EchoCanceller
from appliance.echo.gate import ResidualGate
from appliance.echo.reference import PlayedAudio

logger = logging.getLogger(__name__)

LEAD = 0.03
"""Seconds the reference is taken ahead of the echo it should match. A canceller can only remove what it
was given first; this covers timestamps that say a sound was heard later than it really was."""
GAP = 0.04
"""Seconds between the capture times of two frames, beyond their length, that count as a gap."""


class EchoCancellingInput(AudioInput):
    """``inner``'s frames with what ``played`` says the speaker played taken out by ``canceller``.

    The microphone and the speaker are lined up by the devices' own timestamps (``inner.captured_at``; the
    speaker's at its tap); ``delay`` is the measured time from the speaker to the microphone (calibrate's),
    so the canceller only has to track what changed since. Frames go out in whole 10 ms blocks, at most
    one block later than they came in.
    """

    def __init__(
        self,
        inner: AudioInput,
        played: PlayedAudio,
        canceller: EchoCanceller,
        delay: float = 0.0,
        gate: ResidualGate | None = None,
    ) -> None:
        """``gate``: what keeps the echo the canceller left from passing as the user (default: one that
        assumes the loudest echo until the canceller has measured it)."""
        self.inner = inner
        self.played = played
        self.canceller = canceller
        self.delay = delay
        self.gate = gate if gate is not None else ResidualGate()
        canceller.set_delay(LEAD)
        self.realtime = inner.realtime
        self.cpu_seconds = 0.0
        """Thread CPU time spent cancelling (the per-block cost is this over ``canceller.blocks``)."""
        self.gaps = 0

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[AudioFrame]:
        pending = np.zeros(0, np.int16)
        pending_at = 0.0
        async for frame in self.inner:
            at = self.inner.captured_at
            if at is None:  # an input with no timestamps: it was captured just now
                at = time.monotonic() - frame.seconds
            if not pending.size:
                pending_at = at
            elif abs(at - (pending_at + pending.size / SAMPLE_RATE)) > GAP:
                self.gaps += 1  # the device was reopened or lost audio: the new frame has its own place
                pending_at = at - pending.size / SAMPLE_RATE
            pending = np.concatenate([pending, frame.data]) if pending.size else frame.data
            blocks = pending.size // BLOCK
            if not blocks:
                continue
            started = time.thread_time()
            out = np.empty(blocks * BLOCK, np.int16)
            for k in range(blocks):
                block_at = pending_at + k * BLOCK / SAMPLE_RATE
                far = self.played.read(block_at - self.delay + LEAD, BLOCK)
                near = pending[k * BLOCK : (k + 1) * BLOCK]
                cleaned = self.canceller.cancel(near, far)
                out[k * BLOCK : (k + 1) * BLOCK] = self.gate.apply(near, far, cleaned)
                if not self.gate.user:
                    self.canceller.count(near, far, cleaned)
            self.cpu_seconds += time.thread_time() - started
            self.captured_at = pending_at
            pending = pending[blocks * BLOCK :]
            pending_at += blocks * BLOCK / SAMPLE_RATE
            yield AudioFrame(out, SAMPLE_RATE)

    def snapshot(self) -> dict[str, object]:
        blocks = max(self.canceller.blocks, 1)
        return {
            **self.canceller.figures().as_dict(),
            "delay": round(self.delay, 3),
            "cpu_per_block_ms": round(1000 * self.cpu_seconds / blocks, 3),
            "gaps": self.gaps,
            "gated_blocks": self.gate.gated,
            "speaker_underruns": self.played.underruns,
            "reference_anchors": self.played.anchors,
        }

    async def aclose(self) -> None:
        await self.inner.aclose()
        self.canceller.close()
