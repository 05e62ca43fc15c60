"""A voice that hands a sentence's audio on in pieces (a streamed HTTP response): the first piece is playable
before the sentence's audio is complete, and what the user heard is still counted in sentences."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
import pytest

from appliance.agent.generation import Playout, speak_text
from appliance.audio.frame import AudioFrame
from appliance.audio.io import RecordingOutput
from appliance.tts.base import TTS, SynthesizeStream, TTSCapabilities
from appliance.tts.stream import SentenceSynthesizeStream

FIRST = "The kitchen light is on now."
SECOND = "Tell me if you want it dimmed."
RATE = 16000
PIECE = 0.05


class PiecewiseVoice(TTS):
    """Each sentence as pieces of 50 ms, one per character, after a short pause each (like a trickling server)."""

    capabilities = TTSCapabilities(streaming=False, sample_rate=RATE)

    def __init__(self) -> None:
        self.pieces_sent: list[float] = []

    def stream(self) -> SynthesizeStream:
        async def pieces(text: str) -> AsyncIterator[AudioFrame]:
            for _ in text:
                await asyncio.sleep(0.002)
                self.pieces_sent.append(asyncio.get_running_loop().time())
                yield AudioFrame(np.full(int(PIECE * RATE), 1000, np.int16), RATE)

        return SentenceSynthesizeStream(None, "piecewise_1", speak_chunks=pieces)


def test_pieces_of_one_sentence_are_heard_as_that_sentence() -> None:
    async def go() -> tuple[Playout, float, list[float]]:
        voice, output, playout = PiecewiseVoice(), RecordingOutput(RATE), Playout()
        first: list[float] = []
        try:
            await speak_text(
                f"{FIRST} {SECOND}", voice, output, playout, lambda: first.append(asyncio.get_running_loop().time())
            )
        finally:
            await output.aclose()
        return playout, first[0], voice.pieces_sent

    playout, first_audio, sent = asyncio.run(go())
    assert [s.text for s in playout.spoken] == [FIRST, SECOND]
    assert [s.seconds for s in playout.spoken] == pytest.approx([len(FIRST) * PIECE, len(SECOND) * PIECE])
    assert first_audio < sent[-1]  # the first piece played before the last one was made
    assert playout.tts is not None
    assert playout.tts.audio_duration == pytest.approx((len(FIRST) + len(SECOND)) * PIECE)
    assert playout.heard() == f"{FIRST} {SECOND}"
