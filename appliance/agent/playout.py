"""The speech queue: the agent's utterances played one at a time, each cut at once when interrupted."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from appliance.agent import events as ev
from appliance.agent.agent import Agent
from appliance.agent.generation import Playout, ToolUse, speak_reply, speak_text, turn_metrics
from appliance.agent.listener import Utterance
from appliance.agent.options import SessionOptions
from appliance.agent.speech import SpeechHandle
from appliance.agent.transcription import Transcript
from appliance.agent.turns import heard_text
from appliance.audio.earcon import Earcon, render
from appliance.audio.frame import AudioFrame
from appliance.audio.io import AudioOutput, PlaybackFinished
from appliance.llm.base import LLM, ChatContext, ChatMessage, Role
from appliance.tts.base import TTS
from appliance.utils.aio import TaskSet, cancel_and_wait

logger = logging.getLogger(__name__)

CUT_TIMEOUT = 2.0
"""Seconds an interrupted speech may take to let go of the speaker."""
CLOSING_WAIT = 0.2
"""Seconds a closing session waits to learn how far the speech being cut had played."""
PROGRESS_INTERVAL = 1.0
"""Seconds between updates of what the user has heard of the speech playing."""


@dataclass
class Speech:
    """One queued utterance of the agent and what asked for it."""

    handle: SpeechHandle
    source: Literal["say", "generate_reply"]
    text: str = ""
    """For ``say``: what to speak."""
    instructions: str | None = None
    """For ``generate_reply``: extra instructions for this reply only."""
    user_input: str | None = None
    """Added to the conversation when this speech starts (after what played before it was recorded)."""
    turn: Utterance | None = None
    transcript: Transcript | None = None
    item_id: str = field(default_factory=lambda: f"item_{uuid.uuid4().hex[:12]}")
    """The id of the assistant message it becomes (updated while it plays, added when it ends)."""
    ahead: Ahead | None = None
    """The reply already under way, started on the early transcript (``SpeechQueue.preempt``)."""
    playout: Playout | None = None
    """What it has sent to the speaker so far, once it has started."""


@dataclass(frozen=True)
class Sealed:
    """Where a speech stood when ``finish_sentence`` sealed the output."""

    speech: Speech
    played: float
    """Seconds of it played by then."""
    left: int
    """Samples still queued by then: the rest of the sentence it is allowed to finish."""


@dataclass
class Ahead:
    """A reply started during the endpointing silence: generated and synthesized, its audio and its tool calls
    held until the turn is confirmed."""

    speech: Speech
    hold: asyncio.Event
    playout: Playout
    task: asyncio.Task[None]
    started: float = field(default_factory=time.perf_counter)
    cpu: float = field(default_factory=time.process_time)

    def discard(self) -> tuple[float, float]:
        """Stop it (at the engines: its requests are closed); (seconds it ran, CPU seconds meanwhile)."""
        self.task.cancel()
        self.speech.handle.mark_done()
        return time.perf_counter() - self.started, time.process_time() - self.cpu


def _retrieve(task: asyncio.Task[None]) -> None:
    """A reply made ahead and thrown away: its failure is logged, not left dangling."""
    if not task.cancelled() and task.exception() is not None:
        logger.debug("reply made ahead failed", exc_info=task.exception())


class PlayoutHost(Protocol):
    """What the speech queue tells the turn loop."""

    def speech_started(self, speech: Speech) -> None: ...
    def first_audio(self, speech: Speech) -> None: ...
    def speech_ended(self, speech: Speech, *, failed: bool) -> None: ...


class SpeechQueue:
    """Plays speeches in order through the LLM and TTS onto the output; records what was heard."""

    def __init__(
        self,
        *,
        llm: LLM,
        tts: TTS,
        output: AudioOutput,
        options: SessionOptions,
        chat_ctx: Callable[[], ChatContext],
        add_item: Callable[[Role, str, bool, str | None], ChatMessage],
        emit: Callable[[ev.AgentEvent], None],
        report_error: Callable[[Exception, str], None],
        changed: asyncio.Event,
        tool_use: Callable[[SpeechHandle], ToolUse | None] = lambda handle: None,
        end_of_turn: Callable[[ChatContext, ChatMessage], Awaitable[bool]] | None = None,
        engines: Callable[[], tuple[LLM, TTS]] | None = None,
        agent: Callable[[], Agent | None] | None = None,
    ) -> None:
        self._llm, self._tts, self.output, self._options = llm, tts, output, options
        self._chat_ctx, self._add_item, self._emit, self._report_error = chat_ctx, add_item, emit, report_error
        self._tool_use = tool_use
        self._end_of_turn = end_of_turn
        self._engines = engines or (lambda: (llm, tts))
        self._agent = agent
        self._queue: asyncio.Queue[Speech] = asyncio.Queue()
        self.current: Speech | None = None
        self.host: PlayoutHost | None = None
        self.changed = changed
        """Set whenever a speech ends (what ``drain()`` waits on)."""
        self._task: asyncio.Task[None] | None = None
        self.apology: AudioFrame | None = None
        """The apology, synthesized at start (None: the error tone stands in for it)."""
        self._sealed: Sealed | None = None

    @property
    def idle(self) -> bool:
        return self.current is None and self._queue.empty()

    @property
    def empty(self) -> bool:
        """Nothing waits behind the current speech."""
        return self._queue.empty()

    def start(self, host: PlayoutHost) -> None:
        self.host = host
        self._task = asyncio.create_task(self._loop(), name="session-speech")

    def enqueue(self, speech: Speech, *, user_initiated: bool) -> None:
        self._queue.put_nowait(speech)
        self._emit(ev.SpeechCreatedEvent(speech.handle, speech.source, user_initiated))

    def take_queued(self) -> list[Speech]:
        """Remove every speech not yet started, and return them."""
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out

    def interrupt(self) -> None:
        """Cut the current speech (if it allows it) and drop queued ones that allow it."""
        if self.current is not None and self.current.handle.allow_interruptions:
            self.current.handle.interrupt()
        for speech in self.take_queued():
            if speech.handle.allow_interruptions:
                speech.handle.mark_done()
            else:
                self._queue.put_nowait(speech)

    def play_earcon(self, earcon: Earcon, tasks: TaskSet) -> None:
        """A short tone, unless the agent is speaking (it never plays over a reply)."""
        self.play_sound(render(earcon), tasks, f"earcon-{earcon.value}")

    def play_sound(self, frame: AudioFrame, tasks: TaskSet, name: str) -> None:
        """Audio made ahead of time (a tone, the apology), unless the agent is speaking."""
        if self.current is not None:
            return
        output = self.output

        async def play() -> None:
            await output.capture_frame(frame)
            output.flush()

        tasks.add(asyncio.create_task(play(), name=name))

    def preempt(self, speech: Speech) -> Ahead | None:
        """Start ``speech`` (a reply to ``user_input``) now, with nothing played and no tool run until it is
        enqueued; None when it cannot be made ahead (the queue is busy, or the agent's ``on_end_of_turn``
        may change the reply)."""
        host = self.host
        agent = self._agent() if self._agent is not None else None
        if host is None or not self.idle or speech.source != "generate_reply" or not speech.user_input:
            return None
        if agent is not None and type(agent).on_end_of_turn is not Agent.on_end_of_turn:
            return None
        ctx = self._chat_ctx().copy()
        ctx.add_message(Role.USER, speech.user_input)
        ctx = self._reply_context(speech, ctx)
        llm, tts = self._engines()
        hold, playout = asyncio.Event(), Playout(preemptive=True)
        tools = self._tool_use(speech.handle)
        work = speak_reply(ctx, llm, tts, self.output, playout, lambda: host.first_audio(speech), tools, agent, hold)
        task = asyncio.create_task(work, name=f"{speech.handle.id}-ahead")
        task.add_done_callback(_retrieve)
        speech.ahead = Ahead(speech, hold, playout, task)
        return speech.ahead

    def finish_sentence(self) -> None:
        """Let the current speech end at the end of the sentence it is in (``AudioOutput.finish_sentence``).

        From then on the output no longer says how far a segment its writer has not flushed has played. What it
        still has queued is the rest of that sentence, so the position then, plus what has left the queue since,
        is the position now (``heard_so_far``)."""
        speech = self.current
        playout = speech.playout if speech is not None else None
        played = self.output.played(playout.segment) if playout is not None else None
        self.output.finish_sentence()
        if speech is not None and played:
            self._sealed = Sealed(speech, played, self.output.queue.available())

    def heard_so_far(self) -> ChatMessage | None:
        """The speech playing now as the assistant message it becomes, as far as the user has heard it (marked
        cut unless it has played to its end); None if nothing of it was heard. For a process that ends before
        the speech does: it reads only what is safe to read from any thread."""
        speech = self.current
        playout = speech.playout if speech is not None else None
        if speech is None or playout is None or not speech.handle.add_to_chat_ctx:
            return None
        finished = playout.finished
        if finished is not None:
            heard, cut = playout.heard(), finished.interrupted
        else:
            position = self._position(speech, playout)
            heard = heard_text(list(playout.spoken), position) if position is not None else ""
            cut = True
        return ChatMessage(Role.ASSISTANT, heard, id=speech.item_id, interrupted=cut) if heard else None

    def _position(self, speech: Speech, playout: Playout) -> float | None:
        """Seconds of ``speech`` played (None: not playing)."""
        position = self.output.played(playout.segment)
        sealed = self._sealed
        if position is None and sealed is not None and sealed.speech is speech:
            position = sealed.played + (sealed.left - self.output.queue.available()) / self.output.sample_rate
        return position

    def drop_queued(self) -> None:
        for speech in self.take_queued():
            speech.handle.mark_done()

    async def aclose(self) -> None:
        if self.current is not None:
            self.current.handle.force_interrupt()
        await cancel_and_wait(self._task)
        self.drop_queued()

    async def _loop(self) -> None:
        while True:
            speech = await self._queue.get()
            if speech.handle.interrupted:
                speech.handle.mark_done()
                continue
            self.current = speech
            failed = False
            try:
                failed = await self._run(speech)
            finally:
                self.current = None
                speech.handle.mark_done()
                self.changed.set()
            assert self.host is not None
            self.host.speech_ended(speech, failed=failed)

    async def _run(self, speech: Speech) -> bool:
        """Play one speech to its end or its cut; True if it failed."""
        assert self.host is not None
        host, output, handle = self.host, self.output, speech.handle
        said = self._add_item(Role.USER, speech.user_input, False, None) if speech.user_input else None
        host.speech_started(speech)
        llm, tts = self._engines()
        playout = speech.playout = speech.ahead.playout if speech.ahead is not None else Playout()
        if speech.ahead is not None:
            work: Coroutine[Any, Any, None] | asyncio.Task[None] = speech.ahead.task
            speech.ahead.hold.set()
        elif speech.source == "say":
            agent = self._agent() if self._agent is not None else None
            work = speak_text(speech.text, tts, output, playout, lambda: host.first_audio(speech), agent)
        else:
            ctx = self._reply_context(speech)
            if said is not None and self._end_of_turn is not None:
                new_message = next((m for m in ctx.messages() if m.id == said.id), said)
                if not await self._end_of_turn(ctx, new_message):
                    logger.info("no reply: on_end_of_turn stopped it", extra={"speech_id": handle.id})
                    return False
            tools = self._tool_use(handle)
            agent = self._agent() if self._agent is not None else None
            work = speak_reply(ctx, llm, tts, output, playout, lambda: host.first_audio(speech), tools, agent)
        work_task = work if isinstance(work, asyncio.Task) else asyncio.create_task(work, name=f"{handle.id}-work")
        cut = asyncio.create_task(handle.wait_for_interruption(), name=f"{handle.id}-interrupt")
        progress = asyncio.create_task(self._progress(speech, playout), name=f"{handle.id}-progress")
        failed = False
        try:
            await asyncio.wait({work_task, cut}, return_when=asyncio.FIRST_COMPLETED)
            if work_task.done() and (exc := work_task.exception()) is not None:
                failed = playout.failed = True
                logger.error("reply failed", exc_info=exc, extra={"speech_id": handle.id})
                self._report_error(exc if isinstance(exc, Exception) else RuntimeError(str(exc)), "agent")
            elif not work_task.done():
                await cancel_and_wait(work_task)
            if playout.finished is None:
                await self._stop_playing(playout, CUT_TIMEOUT)
        except asyncio.CancelledError:
            # the session is closing (a stop, a shutdown): what was heard is kept, marked cut
            if playout.finished is None:
                await self._stop_playing(playout, CLOSING_WAIT)
            assert playout.finished is not None
            # cut, even if the sentence it was in played to its end: the rest of the reply never will
            playout.finished = PlaybackFinished(playout.finished.playback_position, True)
            self._record(speech, playout)
            raise
        finally:
            await cancel_and_wait(cut, work_task, progress)
        self._record(speech, playout)
        return failed

    async def _stop_playing(self, playout: Playout, within: float) -> None:
        """Silence the speech and learn how far it played (cut, if it had not ended by itself)."""
        output = self.output
        segment = playout.segment if playout.segment is not None else output.flush()
        output.clear_buffer()
        try:
            playout.finished = await asyncio.wait_for(output.wait_for_playout(segment), within)
        except TimeoutError:
            playout.finished = PlaybackFinished(0.0, True)

    async def _progress(self, speech: Speech, playout: Playout) -> None:
        """While the speech plays, what the user has heard of it so far, as an update of its item."""
        if not speech.handle.add_to_chat_ctx:
            return
        last = ""
        while True:
            await asyncio.sleep(PROGRESS_INTERVAL)
            position = self.output.played(playout.segment)
            heard = heard_text(playout.spoken, position) if position is not None else ""
            if heard and heard != last:
                last = heard
                item = ChatMessage(Role.ASSISTANT, heard, id=speech.item_id, interrupted=True)
                self._emit(ev.ConversationItemUpdatedEvent(item))

    def _reply_context(self, speech: Speech, chat_ctx: ChatContext | None = None) -> ChatContext:
        ctx = self._options.budgeted(chat_ctx or self._chat_ctx())
        if speech.instructions:
            ctx.add_message(Role.SYSTEM, speech.instructions)
        return ctx

    def _record(self, speech: Speech, playout: Playout) -> None:
        handle = speech.handle
        heard = playout.heard()
        handle.heard_text = heard
        interrupted = bool(playout.finished and playout.finished.interrupted)
        if handle.add_to_chat_ctx and heard:
            self._add_item(Role.ASSISTANT, heard, interrupted, speech.item_id)
        metrics = turn_metrics(handle.id, speech.turn, speech.transcript, playout)
        logger.info("turn", extra={"reply_chars": len(playout.text), **metrics.as_dict()})
        self._emit(ev.MetricsCollectedEvent(metrics))
