"""A long recording transcribed in bounded memory: read in blocks, cut into utterances by the VAD, each
utterance transcribed on its own (Whisper hears 30 s at most, and hallucinates in long silences)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from appliance.audio.wav import read_blocks
from appliance.stt.base import STT
from appliance.vad.base import VAD, VADEventType

AHEAD = 20.0
"""Seconds of audio the reader may be ahead of the VAD (what is held in memory besides one utterance)."""
LONG = 30.0
"""Files longer than this are segmented (Whisper's own window)."""


@dataclass(frozen=True)
class Segment:
    start: float
    """Seconds into the file."""
    end: float
    text: str
    confidence: float


async def transcribe_segments(path: Path, vad: VAD, stt: STT) -> list[Segment]:
    """Every utterance of the file with its transcript (silences give none)."""
    stream = vad.stream()
    fed = 0.0
    heard = 0.0
    caught_up = asyncio.Event()
    out: list[Segment] = []

    async def consume() -> None:
        nonlocal heard
        async for event in stream:
            heard = event.timestamp
            if fed - heard <= AHEAD:
                caught_up.set()
            if event.type is VADEventType.END_OF_SPEECH and event.frames:
                audio = event.frames[0]
                result = await stt.recognize(audio)
                data = result.alternatives[0] if result.alternatives else None
                if data is not None and data.text.strip():
                    start = event.frames_start
                    out.append(Segment(start, start + audio.seconds, data.text.strip(), data.confidence))
        caught_up.set()

    consumer = asyncio.create_task(consume(), name="transcribe-segments")
    try:
        for block in read_blocks(path):
            stream.push_frame(block)
            fed += block.seconds
            while fed - heard > AHEAD and not consumer.done():
                caught_up.clear()
                await caught_up.wait()
        stream.end_input()
        await consumer
    finally:
        consumer.cancel()
        await stream.aclose()
    return out
