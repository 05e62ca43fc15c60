"""The agent session: wires hearing (listener) to speaking (generation) under the state machine."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Literal

from appliance.agent import events as ev
from appliance.agent.generation import Playout, speak_reply, speak_text, turn_metrics
from appliance.agent.listener import Listener, Utterance
from appliance.agent.options import SessionOptions
from appliance.agent.speech import SpeechHandle
from appliance.agent.state import AgentState, StateMachine
from appliance.agent.transcription import Transcriber, Transcript
from appliance.agent.turns import WakeGate, confirms_interruption, has_words
from appliance.audio.earcon import Earcon, render
from appliance.audio.io import AudioInput, AudioOutput, PlaybackFinished
from appliance.errors import ApplianceError, ProviderError
from appliance.llm.base import ChatContext, ChatMessage, Role
from appliance.llm.llamacpp import LlamaCppLLM
from appliance.stt.whispercpp import WhisperCppSTT
from appliance.tts.piper import PiperTTS
from appliance.utils.aio import cancel_and_wait
from appliance.vad.silero import SileroVAD
from appliance.wake.base import WakeDetected
from appliance.wake.openwakeword import OpenWakeWordDetector

logger = logging.getLogger(__name__)

DEFAULT_INSTRUCTIONS = (
    "You are a helpful voice assistant running on a small device. "
    "Answer in one or two short, plain sentences that sound natural when spoken."
)
WARM_UP_TIMEOUT = 120.0
MAX_TICK = 1.0
"""Longest sleep of the deadline timer (it also wakes when a deadline is set)."""
MIN_TURN_AUDIO = 0.4
"""An utterance shorter than this after the wake word (with its 0.2 s of kept silence) is the wake
phrase's tail, not a question."""
CUT_TIMEOUT = 2.0
"""Seconds an interrupted speech may take to let go of the speaker."""


class Agent:
    """Who the assistant is: its instructions, and the conversation so far (a restored one, say)."""

    def __init__(self, instructions: str = DEFAULT_INSTRUCTIONS, *, chat_ctx: ChatContext | None = None) -> None:
        self.instructions = instructions
        self.chat_ctx = chat_ctx or ChatContext()


@dataclass
class _Speech:
    handle: SpeechHandle
    source: Literal["say", "generate_reply"]
    text: str = ""
    instructions: str | None = None
    turn: Utterance | None = None
    transcript: Transcript | None = None


class AgentSession(ev.EventEmitter):
    """Owns the turn: waits for the wake word, listens, thinks, speaks, and yields when talked over."""

    def __init__(
        self,
        *,
        vad: SileroVAD,
        stt: WhisperCppSTT,
        llm: LlamaCppLLM,
        tts: PiperTTS,
        wake: OpenWakeWordDetector | None = None,
        options: SessionOptions | None = None,
    ) -> None:
        super().__init__()
        self.options = options or SessionOptions()
        if self.options.require_wake_word and wake is None:
            raise ApplianceError("a session that requires the wake word needs a wake-word detector")
        self._vad, self._stt, self._llm, self._tts, self._wake = vad, stt, llm, tts, wake
        self._deadline_changed = asyncio.Event()
        self._sm = StateMachine(on_deadline=self._deadline_changed.set)
        self.chat_ctx = ChatContext()
        self._speeches: asyncio.Queue[_Speech] = asyncio.Queue()
        self._current: _Speech | None = None
        self._paused: SpeechHandle | None = None
        self._user_speaking = False
        self._woken = False
        self._wake_pos = 0
        self._transcriber = Transcriber(stt, self.emit, lambda exc, source: self.report_error(exc, source))
        self._turn_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._activity = asyncio.Event()
        """Set whenever a background task or a speech ends (what ``drain()`` waits on)."""
        self._main: list[asyncio.Task[None]] = []
        self._listener: Listener | None = None
        self._output: AudioOutput | None = None

    # --- public API -------------------------------------------------------------------------

    @property
    def state(self) -> AgentState:
        return self._sm.state

    @property
    def vad(self) -> SileroVAD:
        return self._vad

    @property
    def stt(self) -> WhisperCppSTT:
        return self._stt

    @property
    def llm(self) -> LlamaCppLLM:
        return self._llm

    @property
    def tts(self) -> PiperTTS:
        return self._tts

    async def start(self, agent: Agent, *, audio_input: AudioInput, audio_output: AudioOutput) -> None:
        """Load the instructions into the LLM's cache and start listening."""
        self.chat_ctx.add_message(Role.SYSTEM, agent.instructions)
        self.chat_ctx.items += [m for m in agent.chat_ctx.copy().items if m.role is not Role.SYSTEM]
        await asyncio.wait_for(asyncio.to_thread(self._llm.warm_up, self.chat_ctx), WARM_UP_TIMEOUT)
        self._output = audio_output
        o = self.options
        gate = WakeGate(o.wake_gate_threshold, o.wake_gate_hold, o.wake_pre_roll)
        wake = self._wake if o.require_wake_word else None
        endpointing = dataclasses.replace(self._vad.settings, min_silence_duration=o.min_endpointing_delay)
        self._listener = Listener(audio_input, self._vad, endpointing, wake, gate, self)
        self._main = [
            asyncio.create_task(self._listener.run(), name="session-listener"),
            asyncio.create_task(self._speech_loop(), name="session-speech"),
            asyncio.create_task(self._timer_loop(), name="session-timer"),
        ]
        self._rest("started")

    def say(self, text: str, *, allow_interruptions: bool | None = None, add_to_chat_ctx: bool = True) -> SpeechHandle:
        """Speak ``text`` (after any speech already queued)."""
        allow = self.options.allow_interruptions if allow_interruptions is None else allow_interruptions
        handle = SpeechHandle(allow_interruptions=allow, add_to_chat_ctx=add_to_chat_ctx)
        self._enqueue(_Speech(handle, "say", text=text), user_initiated=True)
        return handle

    def generate_reply(
        self, *, user_input: str | None = None, instructions: str | None = None, allow_interruptions: bool | None = None
    ) -> SpeechHandle:
        """Have the LLM answer (``user_input`` is added to the conversation first)."""
        if user_input:
            self._add_item(Role.USER, user_input)
        allow = self.options.allow_interruptions if allow_interruptions is None else allow_interruptions
        handle = SpeechHandle(allow_interruptions=allow)
        self._enqueue(_Speech(handle, "generate_reply", instructions=instructions), user_initiated=True)
        return handle

    def interrupt(self) -> None:
        """Cut the current speech (if it allows it) and drop queued ones that allow it."""
        if self._current is not None and self._current.handle.allow_interruptions:
            self._current.handle.interrupt()
        pending = [s for s in self._drain_queue() if not s.handle.allow_interruptions]
        for speech in pending:
            self._speeches.put_nowait(speech)

    def report_error(self, error: Exception, source: str, *, recoverable: bool = True) -> None:
        """Tell subscribers of a failure outside the session (a device that went away, say)."""
        self.emit(ev.ErrorEvent(error, source, recoverable))

    async def wait(self) -> None:
        """Until the input has ended (a recording), failed for good (raised here) or was stopped."""
        if self._main:
            listener = self._main[0]
            await asyncio.wait({listener})  # never cancels it, and a stopped listener is no error
            if not listener.cancelled() and listener.exception() is not None:
                raise listener.exception()  # type: ignore[misc]

    async def drain(self) -> None:
        """Until the input has ended and every turn it started has been answered (bound it with a timeout)."""
        await self.wait()
        while self._tasks or self._current is not None or not self._speeches.empty():
            self._activity.clear()
            await self._activity.wait()

    async def stop_listening(self) -> None:
        """Take no new turns: the input is no longer read (what is being said or done goes on)."""
        if self._main:
            await cancel_and_wait(self._main[0])

    async def finish_sentence(self, within: float) -> bool:
        """Stop taking turns, drop queued speech, and let the current reply play to the end of the sentence
        it is in, at most ``within`` seconds. True if the speaker fell silent in time."""
        await self.stop_listening()
        for speech in self._drain_queue():
            speech.handle._mark_done()
        if self._output is None:
            return True
        self._output.finish_sentence()
        return await self._output.wait_idle(within)

    async def aclose(self) -> None:
        if self._current is not None:
            self._current.handle._force_interrupt()
        await cancel_and_wait(*self._main, *self._tasks)
        for speech in self._drain_queue():
            speech.handle._mark_done()
        if self._sm.state is not AgentState.CLOSED:
            self._set_state(AgentState.CLOSED, "closed")

    # --- state ------------------------------------------------------------------------------

    def _set_state(self, new: AgentState, reason: str, timeout: float | None = None) -> None:
        old = self._sm.move(new, timeout)
        if self._listener is not None:
            self._listener.wake_enabled = new is AgentState.WAITING_FOR_WAKE
        if old is not new:
            logger.info("agent state", extra={"old": old.value, "new": new.value, "reason": reason})
            self.emit(ev.AgentStateChangedEvent(old, new, reason))

    def _rest(self, reason: str, *, follow_up: bool = False) -> None:
        """Back to waiting for the user: a follow-up window after a reply, else the wake word."""
        self._woken = False
        if not self.options.require_wake_word:
            self._set_state(AgentState.LISTENING, reason)
        elif follow_up:
            self._set_state(AgentState.LISTENING, reason, self.options.follow_up_window)
        else:
            self._set_state(AgentState.WAITING_FOR_WAKE, reason)

    async def _timer_loop(self) -> None:
        while True:
            # sleep until the deadline (or a while, if there is none), waking early if it changes
            deadline = self._sm.deadline
            wait = MAX_TICK if deadline is None else min(MAX_TICK, max(0.0, deadline - time.monotonic()))
            self._deadline_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._deadline_changed.wait(), wait)
            if not self._sm.expired():
                continue
            state = self._sm.state
            self._sm.extend(None)
            if state is AgentState.LISTENING and self._current is None:
                if self._woken:
                    self._earcon(Earcon.TIMEOUT)
                self._rest("listening timeout" if self._woken else "follow-up window over")
            elif state in (AgentState.THINKING, AgentState.SPEAKING) and self._current is not None:
                thinking = state is AgentState.THINKING
                what = "no reply audio" if thinking else "reply still playing"
                limit = self.options.thinking_timeout if thinking else self.options.max_speaking_time
                self.report_error(ProviderError(f"{what} after {limit} s; turn dropped", retryable=True), "agent")
                self._current.handle._force_interrupt()

    # --- hearing (called by the listener) ---------------------------------------------------

    def on_wake(self, detection: WakeDetected, position: int) -> None:
        if self._sm.state is not AgentState.WAITING_FOR_WAKE:
            return
        self._woken = True
        self._wake_pos = position
        logger.info("wake word", extra={"wake_word": detection.name, "score": round(detection.score, 3)})
        self.emit(ev.WakeWordDetectedEvent(detection.name, detection.score))
        self._earcon(Earcon.LISTENING)
        self._set_state(AgentState.LISTENING, "wake word", self._listen_timeout())

    def on_speech_start(self) -> None:
        self._user_speaking = True
        state = self._sm.state
        if state is AgentState.LISTENING:
            self._sm.extend(self._listen_timeout())
        if state is not AgentState.WAITING_FOR_WAKE:
            self.emit(ev.UserStartedSpeakingEvent())

    def on_speech_progress(self, speech_duration: float) -> None:
        current = self._current
        if (
            current is None
            or self._paused is not None
            or self._sm.state not in (AgentState.THINKING, AgentState.SPEAKING)
            or not current.handle.allow_interruptions
            or speech_duration < self.options.min_interruption_duration
        ):
            return
        assert self._output is not None
        self._output.pause()
        self._paused = current.handle
        logger.info("speech paused: user talking over it", extra={"speech_id": current.handle.id})
        self.emit(ev.SpeechPausedEvent(current.handle.id))

    def on_speech_pause(self, utterance: Utterance) -> None:
        if not self.options.speculative_transcription:
            return
        if self._paused is None and self._sm.state is not AgentState.LISTENING:
            return
        audio = utterance.after(self._wake_pos)
        if audio.seconds < MIN_TURN_AUDIO:
            return
        self._transcriber.start_early(utterance.key, audio)

    def on_speech_end(self, utterance: Utterance) -> None:
        self._user_speaking = False
        self._track(asyncio.create_task(self._take_turn(utterance), name="session-turn"))

    def on_input_error(self, error: Exception) -> None:
        self.report_error(error, "microphone", recoverable=False)

    # --- turns ------------------------------------------------------------------------------

    def _listen_timeout(self) -> float:
        if self._user_speaking:  # a turn under way ends by itself (the VAD bounds an utterance)
            return self._vad.settings.max_speech_duration + self.options.listening_timeout
        return self.options.listening_timeout

    async def _take_turn(self, utterance: Utterance) -> None:
        async with self._turn_lock:
            paused = self._paused
            if paused is None and self._sm.state is not AgentState.LISTENING:
                return  # not addressed to us: no wake word yet, or a short sound over the reply
            if utterance.after(self._wake_pos).seconds < MIN_TURN_AUDIO and paused is None:
                self._sm.extend(self._listen_timeout())
                return
            self.emit(ev.UserStoppedSpeakingEvent(utterance.speech_duration))
            transcript = await self._transcriber.final(utterance.key, utterance.after(self._wake_pos))
            text = transcript.text if transcript else ""
            confidence = transcript.confidence if transcript else 0.0
            words = has_words(text) if paused is None else confirms_interruption(text, confidence)
            if not words:
                if paused is not None:
                    self._resume(paused)
                elif self._sm.state is AgentState.LISTENING:
                    self._sm.extend(self._listen_timeout())
                return
            if paused is not None:
                self._paused = None
                paused._force_interrupt()
                await asyncio.wait_for(paused.wait_for_playout(), CUT_TIMEOUT)
            self.emit(ev.UserInputTranscribedEvent(text, is_final=True, confidence=confidence))
            logger.info("user turn", extra={"words": len(text.split()), "chars": len(text)})
            self._add_item(Role.USER, text)
            self._set_state(AgentState.THINKING, "user turn", self.options.thinking_timeout)
            handle = SpeechHandle(allow_interruptions=self.options.allow_interruptions)
            self._enqueue(
                _Speech(handle, "generate_reply", turn=utterance, transcript=transcript), user_initiated=False
            )

    def _resume(self, handle: SpeechHandle) -> None:
        if self._paused is handle:
            self._paused = None
            assert self._output is not None
            self._output.resume()
            logger.info("false interruption: resuming", extra={"speech_id": handle.id})
            self.emit(ev.AgentFalseInterruptionEvent(handle.id))

    # --- speaking ---------------------------------------------------------------------------

    def _enqueue(self, speech: _Speech, *, user_initiated: bool) -> None:
        self._speeches.put_nowait(speech)
        self.emit(ev.SpeechCreatedEvent(speech.handle, speech.source, user_initiated))

    def _drain_queue(self) -> list[_Speech]:
        out = []
        while not self._speeches.empty():
            out.append(self._speeches.get_nowait())
        return out

    def _add_item(self, role: Role, text: str, *, interrupted: bool = False) -> ChatMessage:
        item = self.chat_ctx.add_message(role, text, interrupted=interrupted)
        self.emit(ev.ConversationItemAddedEvent(item))
        return item

    def _earcon(self, earcon: Earcon) -> None:
        if not self.options.earcons or self._current is not None or self._output is None:
            return
        output = self._output

        async def play() -> None:
            await output.capture_frame(render(earcon))
            output.flush()

        self._track(asyncio.create_task(play(), name=f"earcon-{earcon.value}"))

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self._tasks.discard(task)
            self._activity.set()
            if not task.cancelled() and task.exception() is not None:
                logger.error("session task failed", exc_info=task.exception(), extra={"task": task.get_name()})

        task.add_done_callback(done)

    async def _speech_loop(self) -> None:
        while True:
            speech = await self._speeches.get()
            if speech.handle.interrupted:
                speech.handle._mark_done()
                continue
            self._current = speech
            try:
                await self._run_speech(speech)
            finally:
                self._current = None
                if self._paused is speech.handle:
                    self._paused = None
                speech.handle._mark_done()
                self._activity.set()

    async def _run_speech(self, speech: _Speech) -> None:
        assert self._output is not None
        output, handle, playout = self._output, speech.handle, Playout()
        if speech.source == "generate_reply":
            self._set_state(AgentState.THINKING, "reply", self.options.thinking_timeout)

        def on_audio() -> None:
            self._set_state(AgentState.SPEAKING, "first audio", self.options.max_speaking_time)

        if speech.source == "say":
            work = speak_text(speech.text, self._tts, output, playout, on_audio)
        else:
            work = speak_reply(self._reply_context(speech), self._llm, self._tts, output, playout, on_audio)
        work_task = asyncio.create_task(work, name=f"{handle.id}-work")
        cut = asyncio.create_task(handle._wait_interrupt(), name=f"{handle.id}-interrupt")
        failed = False
        try:
            await asyncio.wait({work_task, cut}, return_when=asyncio.FIRST_COMPLETED)
            if work_task.done() and work_task.exception() is not None:
                failed = True
                exc = work_task.exception()
                logger.error("reply failed", extra={"speech_id": handle.id, "error": str(exc)})
                self.report_error(exc if isinstance(exc, Exception) else RuntimeError(str(exc)), "agent")
            elif not work_task.done():
                await cancel_and_wait(work_task)
            if playout.finished is None:
                segment = playout.segment if playout.segment is not None else output.flush()
                output.clear_buffer()
                try:
                    playout.finished = await asyncio.wait_for(output.wait_for_playout(segment), CUT_TIMEOUT)
                except TimeoutError:
                    playout.finished = PlaybackFinished(0.0, True)
        finally:
            await cancel_and_wait(cut, work_task)
        self._record(speech, playout)
        if failed:
            self._earcon(Earcon.ERROR)
        if self._speeches.empty() and self._sm.state in (AgentState.THINKING, AgentState.SPEAKING):
            self._rest("reply done", follow_up=True)

    def _reply_context(self, speech: _Speech) -> ChatContext:
        ctx = self.chat_ctx.copy()
        ctx.truncate(self.options.max_history)
        if speech.instructions:
            ctx.add_message(Role.SYSTEM, speech.instructions)
        return ctx

    def _record(self, speech: _Speech, playout: Playout) -> None:
        handle = speech.handle
        heard = playout.heard()
        handle.heard_text = heard
        interrupted = bool(playout.finished and playout.finished.interrupted)
        if handle.add_to_chat_ctx and heard:
            self._add_item(Role.ASSISTANT, heard, interrupted=interrupted)
        metrics = turn_metrics(handle.id, speech.turn, speech.transcript, playout)
        logger.info("turn", extra={"reply_chars": len(playout.text), **metrics.as_dict()})
        self.emit(ev.MetricsCollectedEvent(metrics))
