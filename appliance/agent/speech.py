"""A handle per utterance of the agent: interrupt it, wait for it, see how it ended."""

from __future__ import annotations

import asyncio


class SpeechHandle:
    """Returned by ``say()`` and ``generate_reply()``; done once the audio has played out or was cut.

    ``interrupt()`` is the user's (it honours ``allow_interruptions``); ``force_interrupt()``,
    ``wait_for_interruption()`` and ``mark_done()`` are for the session that plays it.
    """

    def __init__(self, speech_id: str, *, allow_interruptions: bool, add_to_chat_ctx: bool = True) -> None:
        self.id = speech_id
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

    def force_interrupt(self) -> None:
        """Interrupt regardless of ``allow_interruptions`` (session shutdown, timeouts, a confirmed barge-in)."""
        self._interrupt.set()

    async def wait_for_playout(self) -> None:
        """Wait until the audio has played to the end or been interrupted."""
        await asyncio.shield(self._done)

    async def wait_for_interruption(self) -> None:
        await self._interrupt.wait()

    def mark_done(self) -> None:
        """The speech is over (played, cut, failed or dropped unplayed)."""
        if not self._done.done():
            self._done.set_result(None)

    def __repr__(self) -> str:
        return f"SpeechHandle({self.id}, interrupted={self.interrupted}, done={self.done()})"
