"""The hearing half of the agent: audio in -> VAD -> (gated) wake word -> utterances, as callbacks.

With a turn detector, an utterance the model finds complete ends after a short pause; one that sounds
unfinished waits for the VAD's longer silence. A stage that fails (the VAD or the wake model raising, or
overrunning its bound) is reported and started afresh after a backoff: only the end of the input ends the
listener.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from appliance.agent.turns import WakeGate
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import AudioInput
from appliance.audio.preroll import PreRoll
from appliance.turn.base import TurnDetector
from appliance.utils.aio import cancel_and_wait
from appliance.utils.backoff import Backoff
from appliance.vad.base import VAD, VADEvent, VADEventType, VADSettings, VADStream
from appliance.wake.base import WakeDetected, WakeDetector, WakeScorer

logger = logging.getLogger(__name__)

MAX_BACKLOG = 1.0
"""Seconds of audio the reader may get ahead of the VAD before it waits (a file is read this far ahead)."""
RING_SECONDS = 12.0
TURN_TIMEOUT = 0.5
"""Seconds the turn detector may take on a pause before the fixed silence rule decides instead."""


@dataclass(frozen=True)
class Endpointing:
    """How much silence ends an utterance: with a turn detector, ``complete`` after one it finds finished,
    else the VAD's own ``min_silence_duration`` (the longest wait); ``fallback`` when the detector fails."""

    detector: TurnDetector
    complete: float
    fallback: float


@dataclass(frozen=True)
class Verdict:
    """The turn detector's judgement of one pause."""

    probability: float
    seconds: float
    """How long the judgement took."""
    complete: bool
    left_open: bool = False
    """The words so far end on one that no sentence ends on ("the capital of"): not complete, however the
    utterance sounded."""


@dataclass(frozen=True)
class Utterance:
    """What the user said between two silences."""

    audio: AudioFrame
    start: int
    """Stream position (samples) of the first sample of ``audio``."""
    speech_duration: float
    eos_time: float
    """``time.time()`` when the last voiced audio was captured."""
    decided_at: float
    """``time.time()`` when the silence was judged long enough to end the turn."""
    verdict: Verdict | None = None
    """The turn detector's judgement of the pause this utterance ended at (None: no detector, or none yet)."""

    @property
    def key(self) -> tuple[int, int]:
        """(start, length in samples): the same for the early and the final view of one utterance."""
        return self.start, self.audio.samples_per_channel

    def after(self, position: int) -> AudioFrame:
        """The part of the utterance after stream position ``position``."""
        skip = min(max(0, position - self.start), self.audio.samples_per_channel)
        return AudioFrame(self.audio.data[skip:], SAMPLE_RATE)


class Hearing(Protocol):
    """What the listener tells the session."""

    def on_wake(self, detection: WakeDetected, position: int) -> None: ...
    def on_speech_start(self, position: int) -> None:
        """The user started speaking at stream ``position`` (the VAD's padding before it included)."""

    def on_speech_progress(self, speech_duration: float) -> None: ...
    def on_speech_pause(self, utterance: Utterance) -> AudioFrame | None:
        """The user went quiet (the utterance so far): the part of it addressed to the agent, for the turn
        detector to judge (None: nothing is, and the silence alone decides)."""

    def on_speech_resume(self) -> None:
        """The user spoke again after a pause: the utterance goes on."""

    async def left_open(self, key: tuple[int, int]) -> bool:
        """Whether the words of the paused utterance ``key`` so far leave it open (asked only when it sounds
        finished; False when the words are not known)."""

    def on_speech_end(self, utterance: Utterance) -> None: ...
    def on_error(self, error: Exception, source: str) -> None:
        """A stage failed ("vad", "wake"; it is restarted) or the input did ("microphone"; the listener ends)."""


class Listener:
    """Reads the input, runs the VAD on everything and the wake model only when the gate is open."""

    def __init__(
        self,
        audio: AudioInput,
        vad: VAD,
        vad_settings: VADSettings,
        wake: WakeDetector | None,
        gate: Callable[[], WakeGate],
        hearing: Hearing,
        endpointing: Endpointing | None = None,
    ) -> None:
        self._input = audio
        self._vad = vad
        self._vad_settings = vad_settings
        self._wake = wake
        self._new_gate = gate
        self._gate = gate()
        self._scorer: WakeScorer | None = None
        self._hearing = hearing
        self._endpointing = endpointing
        self._pause: tuple[tuple[int, int], float] | None = None
        """The current pause: the utterance's key and the stream time of its SPEECH_PAUSED event."""
        self._paused_speech = 0.0
        self._judging: asyncio.Task[None] | None = None
        self._verdict: tuple[tuple[int, int], Verdict] | None = None
        """The last pause's judgement, and the utterance it was of."""
        self._ring = PreRoll(RING_SECONDS)
        self._arrivals: collections.deque[tuple[int, float]] = collections.deque(maxlen=1024)
        self._voiced: collections.deque[tuple[int, bool]] = collections.deque(maxlen=1024)
        """(stream position at the end of a VAD window, whether it was speech), for the last half minute."""
        self._vad_pos = 0
        self._vad_offset = 0
        """Stream position where the current VAD stream started (a restarted one counts from zero)."""
        self._progress = asyncio.Event()
        self._swap = asyncio.Event()
        """Set when the active agent brings its own VAD."""
        self._speaking = False
        self._ended = False
        self.wake_enabled = wake is not None
        """The session switches the wake model off while it is listening to the user (it runs while the device
        waits for the wake word, and over its own replies, where the wake word stops them)."""
        self.tap: Callable[[AudioFrame], None] | None = None
        """Given every frame as it is captured, while set (a live transcription)."""

    @property
    def position(self) -> int:
        """The stream position the VAD has heard up to."""
        return self._vad_pos

    def audio_since(self, position: int) -> AudioFrame:
        """The captured audio from stream ``position`` to now (as much as the ring still holds); a ``tap`` set
        right after it goes on from the next frame, with no gap."""
        return self._ring.between(position)

    def voice_start(self, after: int) -> int:
        """Where the voice resumes after stream position ``after`` following a silence (with the VAD's padding
        before it, never before ``after``): the question that follows the wake word in the same utterance,
        without the silence between them (a second of silence before the words makes Whisper repeat them).
        A pause shorter than the padding is no silence; ``after`` if none came."""
        window = round(self._vad.capabilities.window * SAMPLE_RATE)
        padding = round(self._vad_settings.prefix_padding * SAMPLE_RATE)
        quiet = 0
        for end, voiced in self._voiced:
            if end - window < after:
                continue
            if not voiced:
                quiet += window
            elif quiet >= padding:
                return max(after, end - window - padding)
            else:
                quiet = 0
        return after

    def has_speech(self, start: int, end: int) -> bool:
        """Whether the VAD found at least its shortest speech voiced between stream positions ``start`` and
        ``end`` (a click or a breath is shorter)."""
        window = round(self._vad.capabilities.window * SAMPLE_RATE)
        voiced = sum(1 for at, v in self._voiced if v and start < at and at - window < end)
        return voiced * window >= self._vad_settings.min_speech_duration * SAMPLE_RATE

    def use_vad(self, vad: VAD) -> None:
        """Listen through ``vad`` from now on (the active agent's own): its stream starts at the next frame."""
        if vad is not self._vad:
            self._vad = vad
            self._swap.set()

    async def run(self) -> None:
        backoff = Backoff()
        stream = self._vad.stream(self._vad_settings)
        reader = asyncio.create_task(self._read(lambda: stream), name="listener-read")
        consume: asyncio.Task[None] | None = None
        swap: asyncio.Task[bool] | None = None
        try:
            while True:
                consume = asyncio.create_task(self._consume(stream), name="listener-vad")
                swap = asyncio.create_task(self._swap.wait(), name="listener-vad-swap")
                await asyncio.wait({consume, swap}, return_when=asyncio.FIRST_COMPLETED)
                await cancel_and_wait(swap)
                swapped = not consume.done()
                await cancel_and_wait(consume)
                if not swapped:
                    try:
                        consume.result()
                        return  # the input ended
                    except Exception as exc:
                        logger.exception("vad failed: restarting it")
                        self._hearing.on_error(exc, "vad")
                self._swap.clear()
                await stream.aclose()
                if self._ended:
                    return
                if not swapped:
                    await asyncio.sleep(backoff.next())
                self._vad_offset = self._vad_pos = self._ring.end
                self._speaking = False
                stream = self._vad.stream(self._vad_settings)
                self._progress.set()  # the reader may be waiting for the old stream to catch up
        finally:
            await cancel_and_wait(reader, self._judging, consume, swap)
            await stream.aclose()
            if self._scorer is not None:
                await self._scorer.aclose()

    async def _read(self, stream: Callable[[], VADStream]) -> None:
        try:
            async for frame in self._input:
                self._ring.push(frame)
                self._arrivals.append((self._ring.end, time.time()))
                if self.tap is not None:
                    self.tap(frame)
                with contextlib.suppress(RuntimeError):  # a failed stream: its successor takes the next frames
                    stream().push_frame(frame)
                while self._ring.end - self._vad_pos > MAX_BACKLOG * SAMPLE_RATE:
                    self._progress.clear()
                    await self._progress.wait()
        except Exception as exc:
            logger.exception("audio input failed")
            self._hearing.on_error(exc, "microphone")
        finally:
            self._ended = True
            with contextlib.suppress(RuntimeError):
                stream().end_input()

    async def _consume(self, stream: VADStream) -> None:
        async for ev in stream:
            self._vad_pos = self._vad_offset + round(ev.timestamp * SAMPLE_RATE)
            self._progress.set()
            if ev.type is VADEventType.INFERENCE_DONE:
                self._voiced.append((self._vad_pos, ev.probability >= self._vad_settings.threshold))
                await self._score_wake(ev)
                if self._speaking:
                    if self._pause is not None and ev.speech_duration > self._paused_speech:
                        self._resumed()
                    self._hearing.on_speech_progress(ev.speech_duration)
            elif ev.type is VADEventType.START_OF_SPEECH:
                self._speaking = True
                begin = max(0.0, ev.speech_start - self._vad_settings.prefix_padding)
                self._hearing.on_speech_start(self._vad_offset + round(begin * SAMPLE_RATE))
            elif ev.type is VADEventType.SPEECH_PAUSED:
                utterance = self._utterance(ev)
                self._pause, self._paused_speech = (utterance.key, ev.timestamp), ev.speech_duration
                addressed = self._hearing.on_speech_pause(utterance)
                if addressed is not None:
                    self._judge(stream, utterance.key, addressed, ev.timestamp)
            elif ev.type is VADEventType.END_OF_SPEECH:
                self._speaking = False
                utterance = self._utterance(ev)
                judged, self._verdict = self._verdict, None
                verdict = judged[1] if judged is not None and judged[0] == utterance.key else None
                self._pause = None
                self._hearing.on_speech_end(dataclasses.replace(utterance, verdict=verdict))

    def _resumed(self) -> None:
        self._pause = None
        if self._judging is not None:
            self._judging.cancel()
        self._hearing.on_speech_resume()

    def _judge(self, stream: VADStream, key: tuple[int, int], audio: AudioFrame, at: float) -> None:
        """Ask the turn detector whether the utterance is finished; if it is, the stream ends it soon."""
        e = self._endpointing
        if e is None:
            return
        if self._judging is not None:
            self._judging.cancel()

        async def judge() -> None:
            began = time.perf_counter()
            try:
                probability = await asyncio.wait_for(e.detector.completion(audio), TURN_TIMEOUT)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("turn detector failed: the fixed silence decides", extra={"error": str(exc)})
                stream.end_pause(at, e.fallback)
                return
            verdict = Verdict(probability, time.perf_counter() - began, e.detector.complete(probability))
            if verdict.complete and await self._words_left_open(key):
                verdict = dataclasses.replace(verdict, complete=False, left_open=True)
            if self._pause != (key, at):
                return  # the user went on speaking meanwhile
            self._verdict = (key, verdict)
            logger.debug(
                "turn judged",
                extra={"probability": round(probability, 3), "complete": verdict.complete, "open": verdict.left_open},
            )
            if verdict.complete:
                stream.end_pause(at, e.complete)

        self._judging = asyncio.create_task(judge(), name="turn-detector")

    async def _words_left_open(self, key: tuple[int, int]) -> bool:
        """The words' say, within ``TURN_TIMEOUT`` (past it, or if they fail, the sound alone decides). The
        reply waits for the same words, so waiting for them here costs the turn little."""
        try:
            return await asyncio.wait_for(self._hearing.left_open(key), TURN_TIMEOUT)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.debug("words of the pause not read", extra={"error": repr(exc)})
            return False

    async def _score_wake(self, ev: VADEvent) -> None:
        if self._wake is None or not self.wake_enabled:
            return
        span = self._gate.update(self._vad_pos / SAMPLE_RATE, ev.probability)
        if span is None:
            return
        if self._scorer is None:
            self._scorer = self._wake.scorer()
        try:
            detections = await self._scorer.score([self._ring.between(*span)])
        except Exception as exc:
            logger.exception("wake-word detection failed: restarting it")
            self._hearing.on_error(exc, "wake")
            # the next speech-like sound gets a fresh scorer and gate (the old model clock is gone)
            await self._scorer.aclose()
            self._scorer, self._gate = None, self._new_gate()
            return
        for detection in detections:
            self._hearing.on_wake(detection, self._gate.stream_position(detection.timestamp))

    def _utterance(self, ev: VADEvent) -> Utterance:
        eos = self._vad_offset + round((ev.timestamp - ev.silence_duration) * SAMPLE_RATE)
        start = self._vad_offset + round(ev.frames_start * SAMPLE_RATE)
        return Utterance(ev.frames[0], start, ev.speech_duration, self._arrival(eos), time.time())

    def _arrival(self, position: int) -> float:
        """When the sample at ``position`` came in (for a live input, when it was spoken)."""
        found: float | None = None
        for end, at in reversed(self._arrivals):
            if end < position:
                break
            found = at
        return found if found is not None else time.time()
