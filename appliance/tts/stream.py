"""Streaming speech from any sentence-at-a-time voice: LLM tokens are cut into sentences, each spoken as soon
as it is complete while the rest of the reply is still being written."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from appliance.audio.frame import AudioFrame
from appliance.tts.base import SynthesizedAudio, SynthesizeStream, TTSMetrics
from appliance.tts.sentences import SentenceStream
from appliance.utils.aio import Channel, cancel_and_wait

Segmenter = Callable[[str], Awaitable[AudioFrame]]
"""Speaks one sentence (bounded in time, cancellable at the engine)."""
ChunkSegmenter = Callable[[str], AsyncIterator[AudioFrame]]
"""Speaks one sentence as its audio arrives, piece by piece (a streamed HTTP response)."""


class SentenceSynthesizeStream(SynthesizeStream):
    """``speak`` returns each sentence whole; ``speak_chunks`` (instead) hands its audio on as it arrives, so the
    first audio of a remote voice does not wait for the end of its sentence."""

    def __init__(self, speak: Segmenter | None, request_id: str, *, speak_chunks: ChunkSegmenter | None = None) -> None:
        if (speak is None) == (speak_chunks is None):
            raise ValueError("give one of speak and speak_chunks")
        self._chunks = speak_chunks or self._whole(speak)  # type: ignore[arg-type]
        self.request_id = request_id
        self._sentences = SentenceStream()
        self._segments: asyncio.Queue[str | None] = asyncio.Queue()
        self._output: Channel[SynthesizedAudio] = Channel()
        self._first_text_at: float | None = None
        self._first_audio_at: float | None = None
        self._busy = 0.0
        self._audio_seconds = 0.0
        self._chars = 0
        self._cancelled = False
        self._ended = False
        self.metrics: TTSMetrics | None = None
        self._task = asyncio.create_task(self._run(), name=f"{request_id}-synth")

    def push_text(self, text: str) -> None:
        if self._ended:
            raise RuntimeError("SynthesizeStream: input already ended")
        if self._first_text_at is None and text.strip():
            self._first_text_at = time.perf_counter()
        for sentence in self._sentences.push(text):
            self._segments.put_nowait(sentence)

    def flush(self) -> None:
        for sentence in self._sentences.flush():
            self._segments.put_nowait(sentence)

    def end_input(self) -> None:
        self.flush()
        self._ended = True
        self._segments.put_nowait(None)

    @staticmethod
    def _whole(speak: Segmenter) -> ChunkSegmenter:
        async def chunks(text: str) -> AsyncIterator[AudioFrame]:
            yield await speak(text)

        return chunks

    async def _run(self) -> None:
        try:
            while (text := await self._segments.get()) is not None:
                start = time.perf_counter()
                self._chars += len(text)
                piece_text = text
                async for frame in self._chunks(text):
                    self._busy += time.perf_counter() - start
                    if self._first_audio_at is None:
                        self._first_audio_at = time.perf_counter()
                    self._audio_seconds += frame.seconds
                    self._output.send(SynthesizedAudio(frame, piece_text))
                    piece_text = ""  # the sentence's text goes with its first piece only
                    start = time.perf_counter()
        except asyncio.CancelledError:
            self._cancelled = True
            raise
        except Exception as exc:
            self._output.fail(exc)
        finally:
            self._finish_metrics()
            self._output.close()

    def _finish_metrics(self) -> None:
        ttfb = -1.0
        if self._first_audio_at is not None and self._first_text_at is not None:
            ttfb = self._first_audio_at - self._first_text_at
        self.metrics = TTSMetrics(self.request_id, ttfb, self._busy, self._audio_seconds, self._chars, self._cancelled)

    async def __anext__(self) -> SynthesizedAudio:
        return await self._output.__anext__()

    async def aclose(self) -> None:
        """Stop: queued sentences are dropped; the one being synthesized is cancelled at the engine."""
        self._cancelled = True
        await cancel_and_wait(self._task)
