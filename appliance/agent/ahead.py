"""The reply made ahead during the endpointing silence (at most one at a time): started on the early
transcript, then taken by the turn it answers, or dropped and stopped at the engines."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from appliance.agent import events as ev
from appliance.agent.playout import Ahead, Speech, SpeechQueue

logger = logging.getLogger(__name__)

Key = tuple[int, int]
"""An utterance by (stream position of its start, its length in samples)."""


class RepliesAhead:
    def __init__(self, speeches: SpeechQueue, emit: Callable[[ev.AgentEvent], None]) -> None:
        self._speeches, self._emit = speeches, emit
        self._kept: tuple[Key, str, Ahead] | None = None
        """The reply made ahead: for which utterance, on which transcript."""

    async def make(
        self,
        key: Key,
        early: Callable[[], Awaitable[str | None]],
        allowed: Callable[[str], bool],
        speech: Callable[[str], Speech],
    ) -> None:
        """Once the ``early`` transcript of utterance ``key`` is in, start the reply to it (``speech(text)``),
        if ``allowed(text)`` still holds then and none is under way."""
        text = await early()
        if text is None or self._kept is not None or not allowed(text):
            return
        reply = speech(text)
        ahead = self._speeches.preempt(reply)
        if ahead is not None:
            self._kept = (key, text, ahead)
            logger.debug("reply started ahead", extra={"speech_id": reply.handle.id})

    def discard(self, reason: str) -> None:
        kept, self._kept = self._kept, None
        if kept is not None:
            self.drop(kept[2], reason)

    def drop(self, ahead: Ahead, reason: str) -> None:
        seconds, cpu = ahead.discard()
        logger.info("reply made ahead discarded", extra={"reason": reason, "seconds": round(seconds, 3)})
        self._emit(ev.PreemptiveDiscardedEvent(reason, seconds, cpu))

    def claim(self, key: Key, text: str | None) -> Ahead | None:
        """The reply made ahead, if it answers this very turn (same audio, same words); else it is dropped."""
        kept = self._kept
        if kept is None:
            return None
        if text is not None and kept[0] == key and kept[1] == text:
            self._kept = None
            return kept[2]
        self.discard("the final transcript differed")
        return None
