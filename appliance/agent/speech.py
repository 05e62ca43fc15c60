"""A handle per utterance of the agent: interrupt it, wait for it, see how it ended."""

from __future__ import annotations

import asyncio
import itertools

_ids = itertools.count(1)


class SpeechHandle:
    """Returned by ``say()`` and ``generate_reply()``; done once the audio has played out or was cut."""

    def __init__(self, *, allow_interruptions: bool, add_to_chat_ctx: bool = True) -> None:
        self.id = f"speech_{next(_ids)}"
        self.allow_interruptions = allow_interruptions
        self.add_to_chat_ctx = add_to_chat_ctx
        self._interrupt = asyncio.Event()
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.heard_text = ""
        """What the user heard of it (the whole text unless interrupted)."""

    @property
    def interrupted(self) -> bool:
        return self._interrupt.is_set()

    def done(self) -> bool:
        return self._done.done()

    def interrupt(self) -> SpeechHandle:
        """Stop this speech: queued audio is dropped and the speaker goes quiet within one block."""
        if not self.allow_interruptions:
            raise RuntimeError(f"{self.id} does not allow interruptions")
        self._interrupt.set()
        return self

    async def wait_for_playout(self) -> None:
        """Wait until the audio has played to the end or been interrupted."""
        await asyncio.shield(self._done)

    async def _wait_interrupt(self) -> None:
        await self._interrupt.wait()

    def _force_interrupt(self) -> None:
        """Interrupt regardless of ``allow_interruptions`` (session shutdown, timeouts)."""
        self._interrupt.set()

    def _mark_done(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    def __repr__(self) -> str:
        return f"SpeechHandle({self.id}, interrupted={self.interrupted}, done={self.done()})"
