"""Transcribing the user's utterances, started early during the endpointing silence when possible."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from appliance.agent import events as ev
from appliance.audio.frame import AudioFrame
from appliance.errors import APIError
from appliance.providers.attempt import FailedAttempt
from appliance.stt.base import STT, SpeechData, SpeechEvent, SpeechEventType, SpeechStream, joined, words_so_far

logger = logging.getLogger(__name__)

Key = tuple[int, int]
"""An utterance by (stream position of its start, its length in samples)."""


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float
    stt_latency: float | None
    """Seconds the STT engine spent on it."""
    speculative: bool
    """Computed during the endpointing silence, and kept because the user stayed silent."""
    at: float
    """``time.time()`` when it was ready for the turn."""
    provider: str = ""
    """Which provider transcribed it (set behind a fallback adapter)."""
    failed_attempts: tuple[FailedAttempt, ...] = ()
    """The tries that failed before it."""


@dataclass
class _Live:
    """A transcription streamed as the user speaks."""

    stream: SpeechStream
    start: int
    """Stream position of its first sample."""
    task: asyncio.Task[SpeechEvent]
    ended: bool = False
    at: float = 0.0
    """``time.perf_counter()`` at the end of the input."""


def _retrieve(task: asyncio.Task[SpeechEvent]) -> None:
    """An early transcript nobody waits for any more: its failure is logged, not left dangling."""
    if not task.cancelled() and task.exception() is not None:
        logger.debug("early transcription failed", exc_info=task.exception())


class Transcriber:
    def __init__(
        self,
        stt: STT,
        timeout: float,
        emit: Callable[[ev.AgentEvent], None],
        report_error: Callable[[Exception, str], None],
        recognize: Callable[[AudioFrame], Awaitable[SpeechEvent]] | None = None,
    ) -> None:
        """``recognize``: how an utterance is transcribed (the active agent's ``stt_node``; None: ``stt``)."""
        self._stt = stt
        self._recognize = recognize or stt.recognize
        self._timeout = timeout
        self._emit = emit
        self._report_error = report_error
        self._early: tuple[Key, asyncio.Task[SpeechEvent]] | None = None
        self._live: _Live | None = None
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def streams(self) -> bool:
        """The STT takes the audio as it is spoken (live interim transcripts)."""
        return self._stt.capabilities.streaming

    @property
    def live(self) -> bool:
        return self._live is not None

    def begin_live(self, audio: AudioFrame, start: int) -> None:
        """Stream the user's speech from stream position ``start`` (``audio``: what was said since then); then
        ``push()`` each captured frame. Its interim transcripts are emitted as they come."""
        self.drop_live()
        stream = self._stt.stream()
        if audio.samples_per_channel:
            stream.push_frame(audio)
        task = asyncio.create_task(self._read_live(stream), name="live-stt")
        task.add_done_callback(_retrieve)
        self._live = _Live(stream, start, task)

    def push(self, frame: AudioFrame) -> None:
        if self._live is not None and not self._live.ended:
            try:
                self._live.stream.push_frame(frame)
            except Exception as exc:  # a stream that broke: the recording is transcribed at the end instead
                logger.warning("live transcription dropped", extra={"error": str(exc)})
                self.drop_live()

    def end_live(self) -> None:
        """The utterance ended: the provider finishes what it heard."""
        if self._live is not None and not self._live.ended:
            self._live.ended = True
            self._live.at = time.perf_counter()
            self._live.stream.end_input()

    def drop_live(self) -> None:
        """Stop the live transcription (closed at the provider, in the background)."""
        live, self._live = self._live, None
        if live is not None:
            live.task.cancel()
            closing = asyncio.create_task(live.stream.aclose(), name="live-stt-close")
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _read_live(self, stream: SpeechStream) -> SpeechEvent:
        """The FINAL of the stream (its finals joined), emitting the words so far at each interim."""
        finals: list[SpeechData] = []
        last: SpeechEvent | None = None
        async for event in stream:
            if not event.alternatives:
                continue
            if event.type is SpeechEventType.INTERIM_TRANSCRIPT:
                so_far = words_so_far(finals, event.alternatives[0].text)
                self._emit(ev.UserInputTranscribedEvent(so_far, is_final=False))
            elif event.type is SpeechEventType.FINAL_TRANSCRIPT:
                finals.extend(event.alternatives[:1])
                last = event
        if last is None:
            return SpeechEvent(SpeechEventType.FINAL_TRANSCRIPT, 0.0, ())
        return dataclasses.replace(last, alternatives=(joined(finals),))

    def cancel(self) -> None:
        """Drop the early transcript, if any (cancelled at the engine)."""
        early, self._early = self._early, None
        if early is not None and not early[1].done():
            early[1].cancel()

    async def aclose(self) -> None:
        self.cancel()
        self.drop_live()
        await asyncio.gather(*self._closing, return_exceptions=True)

    def start_early(self, key: Key, audio: AudioFrame) -> None:
        """The user paused: transcribe what was said so far (an interim transcript)."""
        old = self._early
        task = asyncio.create_task(self._interim(audio), name="speculative-stt")
        task.add_done_callback(_retrieve)
        self._early = (key, task)
        if old is not None and not old[1].done():
            old[1].cancel()

    async def early_text(self, key: Key) -> str | None:
        """The early transcript of utterance ``key`` once it is ready (None: there is none, it was dropped or
        it failed). Waiting is cancellable without cancelling the transcript."""
        early = self._early
        if early is None or early[0] != key:
            return None
        task = early[1]
        try:
            result = await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except asyncio.CancelledError:
            if task.cancelled():
                return None
            raise
        except Exception:  # the failure is the final transcript's to report
            return None
        return result.alternatives[0].text if result.alternatives else ""

    async def _interim(self, audio: AudioFrame) -> SpeechEvent:
        result = await self._recognize(audio)
        text = result.alternatives[0].text if result.alternatives else ""
        self._emit(ev.UserInputTranscribedEvent(text, is_final=False))
        return result

    async def final(self, key: Key, audio: AudioFrame) -> Transcript | None:
        """The utterance's transcript: the live one if the utterance was streamed, else the early one if it was
        of this same audio, else recognized now; None if it failed."""
        live = self._live
        if live is not None and key[0] <= live.start <= key[0] + key[1]:
            self._live = None
            transcript = await self._final_live(live)
            if transcript is not None:
                self.cancel()  # an early transcript nobody needs
                return transcript
        self.drop_live()
        early, self._early = self._early, None
        kept = early is not None and early[0] == key and not early[1].cancelled()
        try:
            if early is not None and kept:
                result = await asyncio.wait_for(early[1], self._timeout)
            else:
                if early is not None:
                    early[1].cancel()
                result = await asyncio.wait_for(self._recognize(audio), self._timeout)
        except (APIError, TimeoutError) as exc:
            logger.error("transcription failed", exc_info=exc)
            self._report_error(exc, "stt")
            return None
        data = result.alternatives[0] if result.alternatives else None
        return Transcript(
            data.text if data else "",
            data.confidence if data else 0.0,
            result.metrics.duration if result.metrics else None,
            kept,
            time.time(),
            result.metrics.provider if result.metrics else "",
            result.metrics.failed_attempts if result.metrics else (),
        )

    async def _final_live(self, live: _Live) -> Transcript | None:
        """The streamed transcript, or None (logged) if the stream failed: the recording is then transcribed."""
        if not live.ended:
            live.ended, live.at = True, time.perf_counter()
            live.stream.end_input()
        try:
            result = await asyncio.wait_for(live.task, self._timeout)
        except (APIError, TimeoutError) as exc:
            logger.warning("live transcription failed: transcribing the recording", extra={"error": str(exc)})
            return None
        finally:
            await live.stream.aclose()
        data = result.alternatives[0] if result.alternatives else None
        metrics = result.metrics
        return Transcript(
            data.text if data else "",
            data.confidence if data else 0.0,
            time.perf_counter() - live.at,
            False,
            time.time(),
            metrics.provider if metrics else self._stt.label,
            metrics.failed_attempts if metrics else (),
        )
