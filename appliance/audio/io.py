"""The agent's audio boundary: what it reads from (an input) and speaks into (an output).

The agent never touches a device. A microphone and a speaker (``capture``/``playback``), a recording and
a WAV buffer (here), or a LiveKit room all present these two shapes.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.playback_queue import PlaybackQueue, Segment
from appliance.audio.resample import resample
from appliance.utils.aio import cancel_and_wait

logger = logging.getLogger(__name__)

BLOCK_SECONDS = 0.02
"""The audio block: capture delivers, and playback reads, 20 ms at a time."""


@dataclass(frozen=True)
class PlaybackFinished:
    """How one segment (one utterance of the agent) ended at the speaker."""

    playback_position: float
    """Seconds of the segment the listener actually heard."""
    interrupted: bool
    """True if it was cleared before it played to the end."""
    started_at: float | None = None
    """``time.time()`` when its first sample reached the speaker (None if nothing played)."""


class AudioInput(abc.ABC):
    """16 kHz mono frames, read with ``async for``."""

    realtime: bool = True
    """Frames arrive at the pace they were spoken (a microphone), not as fast as they can be read (a file)."""
    captured_at: float | None = None
    """``time.monotonic()`` when the first sample of the frame last handed out was captured, for an input
    that knows (a microphone, from the device's timestamps); None otherwise."""

    @abc.abstractmethod
    def __aiter__(self) -> AsyncIterator[AudioFrame]: ...

    async def aclose(self) -> None:
        return None


class AudioOutput:
    """A speaker fed segment by segment: ``capture_frame()``... ``flush()``, then ``wait_for_playout()``.

    ``clear_buffer()`` silences it within one block and ends every queued segment as interrupted;
    ``pause()``/``resume()`` hold the audio without dropping it (a possible false interruption).
    """

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._loop: asyncio.AbstractEventLoop | None = None
        self.queue = PlaybackQueue(self._segment_done_threadsafe)
        self._results: dict[int, asyncio.Future[PlaybackFinished]] = {}
        """Each flushed segment's outcome: pending ones, and the last few finished, so a late waiter gets it."""
        self._last: int | None = None
        self._sealed: int | None = None
        """The segment ``finish_sentence()`` ended before its writer flushed it."""
        self.latency = 0.0
        """Seconds from the queue to the listener's ear (the device's output latency)."""

    async def capture_frame(self, frame: AudioFrame) -> None:
        self._bind()
        if frame.sample_rate != self.sample_rate or frame.num_channels > 1:
            frame = resample(frame, self.sample_rate)  # to the device's rate, in mono
        self.queue.push(frame.data)

    def flush(self) -> int:
        """The current segment is complete: it finishes when its last sample has played. Returns its id."""
        self._bind()
        if self._sealed is not None:  # ended by finish_sentence(): that is the segment being written
            sealed, self._sealed = self._sealed, None
            return sealed
        segment = self.queue.end_segment()
        assert self._loop is not None
        future: asyncio.Future[PlaybackFinished] = self._loop.create_future()
        self._results[segment.id] = future
        for old in [k for k, f in self._results.items() if f.done()][:-16]:
            del self._results[old]
        self._last = segment.id
        if segment.done:  # nothing was captured: finished at once
            self._resolve(segment)
        return segment.id

    def clear_buffer(self) -> None:
        self.queue.clear()

    def played(self, segment: int | None = None) -> float | None:
        """Seconds played of ``segment`` (None: the one being written), while it plays; None once it ended."""
        samples = self.queue.played(segment)
        return None if samples is None else samples / self.sample_rate

    def finish_sentence(self) -> None:
        """End at the end of the sentence being played; later audio is dropped (see ``PlaybackQueue``). The
        segment being played counts as flushed: the speech writing it learns how far it played from its next
        ``flush()``, even though it had not flushed it yet."""
        self._bind()
        keep = self.queue.finish_sentence()
        if keep is None or keep.id in self._results:
            return
        assert self._loop is not None
        self._results[keep.id] = self._loop.create_future()
        self._sealed = self._last = keep.id
        if keep.done:
            self._resolve(keep)

    async def wait_idle(self, within: float) -> bool:
        """Until nothing is queued (True), or ``within`` seconds (False)."""
        deadline = time.monotonic() + within
        while self.queue.available() or self.queue.paused:
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(BLOCK_SECONDS)
        await asyncio.sleep(min(self.latency, max(0.0, deadline - time.monotonic())))  # the device's own buffer
        return True

    def wake(self) -> None:
        """Audio may follow soon (the user started speaking): an output that rests gets ready. Nothing here."""

    def pause(self) -> None:
        self.queue.pause()

    def resume(self) -> None:
        self.queue.resume()

    async def wait_for_playout(self, segment: int | None = None) -> PlaybackFinished:
        """Wait until a flushed segment (default: the last one) has played out or been cleared."""
        key = self._last if segment is None else segment
        future = self._results.get(key) if key is not None else None
        if future is None:
            return PlaybackFinished(0.0, False)
        return await asyncio.shield(future)

    async def aclose(self) -> None:
        self.queue.clear()

    def _bind(self) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()

    def _segment_done_threadsafe(self, segment: Segment) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._resolve, segment)

    def _resolve(self, segment: Segment) -> None:
        future = self._results.get(segment.id)
        if future is None or future.done():
            return
        future.set_result(PlaybackFinished(segment.played / self.sample_rate, segment.interrupted, segment.started_at))


class FileInput(AudioInput):
    """A recording as a microphone: 20 ms frames, paced in real time or as fast as they are read."""

    def __init__(self, audio: AudioFrame, *, realtime: bool = False, trailing_silence: float = 0.0) -> None:
        if audio.sample_rate != SAMPLE_RATE or audio.num_channels != 1:
            raise ValueError("FileInput takes 16 kHz mono audio; read it with read_audio()")
        tail = np.zeros(int(trailing_silence * SAMPLE_RATE), np.int16)
        self._audio = AudioFrame(np.concatenate([audio.data, tail]), SAMPLE_RATE)
        self.realtime = realtime

    async def _frames(self) -> AsyncIterator[AudioFrame]:
        start = time.monotonic()
        for i, frame in enumerate(self._audio.split(int(BLOCK_SECONDS * SAMPLE_RATE))):
            if self.realtime:
                await asyncio.sleep(max(0.0, start + (i + 1) * BLOCK_SECONDS - time.monotonic()))
            else:
                await asyncio.sleep(0)
            yield frame

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()


class BlockInput(AudioInput):
    """A recording of any length as a microphone: read block by block as it is heard (``blocks()`` gives 16 kHz
    mono blocks, e.g. ``wav.read_blocks``), so an hour takes the memory of one block; 20 ms frames, paced in
    real time or as fast as they are read. Reading runs in a thread, off the event loop."""

    def __init__(
        self, blocks: Callable[[], Iterable[AudioFrame]], *, realtime: bool = False, trailing_silence: float = 0.0
    ) -> None:
        self._blocks = blocks
        self.realtime = realtime
        self._tail = np.zeros(int(trailing_silence * SAMPLE_RATE), np.int16)

    async def _frames(self) -> AsyncIterator[AudioFrame]:
        step = int(BLOCK_SECONDS * SAMPLE_RATE)
        start, n = time.monotonic(), 0
        blocks = iter(self._blocks())
        carry = np.zeros(0, np.int16)
        done = False
        while not done:
            block = await asyncio.to_thread(next, blocks, None)
            if block is None:
                done = True
                data = np.concatenate([carry, self._tail])
                data = np.concatenate([data, np.zeros(-data.size % step, np.int16)])
            else:
                if block.sample_rate != SAMPLE_RATE or block.num_channels != 1:
                    raise ValueError("BlockInput takes 16 kHz mono blocks; read them with read_blocks()")
                data = np.concatenate([carry, block.data])
            whole = data.size // step * step
            for i in range(0, whole, step):
                n += 1
                if self.realtime:
                    await asyncio.sleep(max(0.0, start + n * BLOCK_SECONDS - time.monotonic()))
                else:
                    await asyncio.sleep(0)
                yield AudioFrame(data[i : i + step], SAMPLE_RATE)
            carry = data[whole:]

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()


class RecordingOutput(AudioOutput):
    """A speaker that writes what it plays into memory, block by block, silence included.

    ``realtime=True`` plays at the pace of a real speaker (so interruptions land mid-sentence);
    otherwise it drains as fast as audio arrives (the ``converse`` command writes the reply to a file).
    """

    def __init__(self, sample_rate: int, *, realtime: bool = False) -> None:
        super().__init__(sample_rate)
        self.realtime = realtime
        self._blocks: list[np.ndarray] = []
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def audio(self) -> AudioFrame:
        """Everything played so far (with the silences, in real-time mode)."""
        data = np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.int16)
        return AudioFrame(data, self.sample_rate)

    async def capture_frame(self, frame: AudioFrame) -> None:
        await super().capture_frame(frame)
        self._ensure_task()
        self._wake.set()

    def flush(self) -> int:
        segment = super().flush()
        self._ensure_task()
        self._wake.set()
        return segment

    def _ensure_task(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._play(), name="recording-output")

    async def _play(self) -> None:
        block = int(BLOCK_SECONDS * self.sample_rate)
        start, n = time.monotonic(), 0
        while True:
            if self.realtime:
                n += 1
                await asyncio.sleep(max(0.0, start + n * BLOCK_SECONDS - time.monotonic()))
                self._blocks.append(self.queue.read(block))
            else:
                available = self.queue.available()
                if available:
                    self._blocks.append(self.queue.read(available))
                else:
                    self._wake.clear()
                    await self._wake.wait()

    async def aclose(self) -> None:
        await super().aclose()
        await cancel_and_wait(self._task)
