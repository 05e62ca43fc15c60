"""The cancelable playback queue: segments of audio that a device thread reads block by block."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable

import numpy as np


class Segment:
    """One utterance of the agent in the queue, and how much of it has been played."""

    __slots__ = ("chunks", "done", "flushed", "id", "interrupted", "offset", "played", "queued", "started_at")

    def __init__(self, segment_id: int) -> None:
        self.id = segment_id
        self.chunks: collections.deque[np.ndarray] = collections.deque()
        self.offset = 0
        """Samples of the first chunk already played."""
        self.queued = 0
        """Samples captured and not yet played."""
        self.played = 0
        self.flushed = False
        self.done = False
        self.interrupted = False
        self.started_at: float | None = None
        """``time.time()`` when its first sample was heard (as far as the reader knew its delay)."""


class PlaybackQueue:
    """Written from the event loop, read from the audio device's thread; one lock, no waits in ``read``.

    ``on_done(segment)`` is called (from whichever thread finished it) when a flushed segment has played
    out, or when ``clear()`` ends it; ``segment.played`` then says how much of it was heard.
    """

    def __init__(self, on_done: Callable[[Segment], None]) -> None:
        self._on_done = on_done
        self._lock = threading.Lock()
        self._segments: collections.deque[Segment] = collections.deque()
        self._open: Segment | None = None
        self._paused = False
        self._sealed = False
        """After ``finish_sentence()``: new audio is refused until ``clear()``."""
        self._segment_ids = 0
        self.underruns = 0
        """Blocks that found a segment still open but out of audio (the producer fell behind)."""

    def _new_segment(self) -> Segment:
        self._segment_ids += 1
        return Segment(self._segment_ids)

    @property
    def paused(self) -> bool:
        return self._paused

    def push(self, data: np.ndarray) -> None:
        if not data.size:
            return
        with self._lock:
            if self._sealed:
                return
            if self._open is None:
                self._open = self._new_segment()
                self._segments.append(self._open)
            self._open.chunks.append(data)
            self._open.queued += data.size

    def played(self, segment_id: int | None = None) -> int | None:
        """Samples played of segment ``segment_id`` (None: the one being written); None once it has ended."""
        with self._lock:
            if segment_id is None:
                return self._open.played if self._open is not None else None
            return next((s.played for s in self._segments if s.id == segment_id), None)

    def end_segment(self) -> Segment:
        """Close the open segment (an empty one if nothing was pushed) and return it."""
        finished: list[Segment] = []
        with self._lock:
            segment = self._open or self._new_segment()
            self._open = None
            segment.flushed = True
            if segment not in self._segments:
                segment.done = True
            elif not segment.queued and self._segments[0] is segment:
                self._finish(segment, finished)
        self._notify(finished)
        return segment

    def clear(self) -> None:
        """Drop everything queued; every segment ends as interrupted at what it has played."""
        finished: list[Segment] = []
        with self._lock:
            self._open = None
            self._drop_all(finished)
            self._paused = False
            self._sealed = False
        self._notify(finished)

    def finish_sentence(self) -> Segment | None:
        """Keep only the chunk being played (a sentence) and refuse new audio until ``clear()``: the speaker
        ends at the end of that sentence; every segment ends as interrupted if anything was dropped. Returns
        the segment that goes on playing (None: nothing was playing)."""
        finished: list[Segment] = []
        with self._lock:
            self._sealed = True
            self._paused = False
            self._open = None
            keep = self._segments.popleft() if self._segments and self._segments[0].played else None
            self._drop_all(finished)  # not started: dropped whole
            if keep is not None:
                while len(keep.chunks) > 1:
                    keep.queued -= keep.chunks.pop().size
                    keep.interrupted = True
                keep.flushed = True
                self._segments.append(keep)
        self._notify(finished)
        return keep

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    @property
    def idle(self) -> bool:
        """Nothing queued, open or paused: the device would only play silence."""
        with self._lock:
            return not self._segments

    def available(self) -> int:
        """Samples ready to play now (0 while paused)."""
        with self._lock:
            return 0 if self._paused else sum(s.queued for s in self._segments)

    def read(self, n: int, delay: float = 0.0) -> np.ndarray:
        """Exactly ``n`` samples: queued audio, then silence (see ``read_into``)."""
        out = np.empty(n, np.int16)
        self.read_into(out, delay)
        return out

    def read_into(self, out: np.ndarray, delay: float = 0.0) -> bool:
        """Fill ``out`` with queued audio, then silence; False if it is all silence. ``delay``: seconds until
        the first sample of ``out`` is heard (the device's buffer), for ``Segment.started_at``."""
        n = out.size
        finished: list[Segment] = []
        with self._lock:
            filled = 0
            while filled < n and self._segments and not self._paused:
                segment = self._segments[0]
                if not segment.chunks:
                    if segment.flushed:
                        self._finish(segment, finished)
                        continue
                    self.underruns += 1
                    break
                if segment.started_at is None:
                    segment.started_at = time.time() + delay
                chunk = segment.chunks[0]
                take = min(n - filled, chunk.size - segment.offset)
                out[filled : filled + take] = chunk[segment.offset : segment.offset + take]
                filled += take
                segment.offset += take
                segment.played += take
                segment.queued -= take
                if segment.offset == chunk.size:
                    segment.chunks.popleft()
                    segment.offset = 0
                if not segment.chunks and segment.flushed:
                    self._finish(segment, finished)
        out[filled:] = 0
        if finished:
            self._notify(finished)
        return filled > 0

    def _drop_all(self, finished: list[Segment]) -> None:
        """End every queued segment as interrupted at what it has played (under the lock)."""
        while self._segments:
            segment = self._segments.popleft()
            segment.interrupted = True
            segment.chunks.clear()
            segment.queued = 0
            self._finish(segment, finished, pop=False)

    def _finish(self, segment: Segment, finished: list[Segment], pop: bool = True) -> None:
        if pop and self._segments and self._segments[0] is segment:
            self._segments.popleft()
        segment.done = True
        finished.append(segment)

    def _notify(self, finished: list[Segment]) -> None:
        for segment in finished:
            self._on_done(segment)
