"""Transcribing the user's utterances, started early during the endpointing silence when possible."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.agent import events as ev
from appliance.audio.frame import AudioFrame
from appliance.errors import APIError
from appliance.providers.attempt import FailedAttempt
from appliance.stt.base import STT, SpeechEvent

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
    ) -> None:
        self._stt = stt
        self._timeout = timeout
        self._emit = emit
        self._report_error = report_error
        self._early: tuple[Key, asyncio.Task[SpeechEvent]] | None = None

    def cancel(self) -> None:
        """Drop the early transcript, if any (cancelled at the engine)."""
        early, self._early = self._early, None
        if early is not None and not early[1].done():
            early[1].cancel()

    def start_early(self, key: Key, audio: AudioFrame) -> None:
        """The user paused: transcribe what was said so far (an interim transcript)."""
        old = self._early
        task = asyncio.create_task(self._interim(audio), name="speculative-stt")
        task.add_done_callback(_retrieve)
        self._early = (key, task)
        if old is not None and not old[1].done():
            old[1].cancel()

    async def _interim(self, audio: AudioFrame) -> SpeechEvent:
        result = await self._stt.recognize(audio)
        text = result.alternatives[0].text if result.alternatives else ""
        self._emit(ev.UserInputTranscribedEvent(text, is_final=False))
        return result

    async def final(self, key: Key, audio: AudioFrame) -> Transcript | None:
        """The utterance's transcript (the early one if it was of this same audio); None if it failed."""
        early, self._early = self._early, None
        kept = early is not None and early[0] == key and not early[1].cancelled()
        try:
            if early is not None and kept:
                result = await asyncio.wait_for(early[1], self._timeout)
            else:
                if early is not None:
                    early[1].cancel()
                result = await asyncio.wait_for(self._stt.recognize(audio), self._timeout)
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
