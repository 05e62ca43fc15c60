"""The turn loop of the active agent: what it hears decides what state it is in and what it says next.

It owns the state machine and its deadlines, the listener (hearing) and the transcriber, and tells the speech
queue what to say. Every state has a deadline or ends by itself, so nothing waits forever: listening times
out, thinking and speaking are bounded, and a reply paused by a possible interruption is either resumed or cut.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from appliance.agent import events as ev
from appliance.agent.ahead import RepliesAhead
from appliance.agent.listener import Endpointing, Listener, Utterance
from appliance.agent.options import SessionOptions
from appliance.agent.playout import Ahead, Speech, SpeechQueue
from appliance.agent.speech import SpeechHandle
from appliance.agent.state import AgentState, StateMachine
from appliance.agent.talkover import TalkOver, pause_bound
from appliance.agent.transcription import Transcriber, Transcript
from appliance.agent.turns import MIN_TURN_AUDIO, WakeGate, has_words
from appliance.audio.earcon import Earcon
from appliance.audio.frame import AudioFrame
from appliance.audio.io import AudioInput, AudioOutput
from appliance.errors import APITimeoutError
from appliance.intents.handler import IntentAnswer
from appliance.stt.base import STT, SpeechEvent
from appliance.turn.base import TurnDetector
from appliance.utils.aio import TaskSet, cancel_and_wait
from appliance.utils.words import leaves_open
from appliance.vad.base import VAD
from appliance.wake.base import WakeDetected, WakeDetector

logger = logging.getLogger(__name__)

OVER_A_REPLY = (AgentState.THINKING, AgentState.SPEAKING, AgentState.PAUSED)
"""States in which the wake word stops the reply: the wake model runs in them too."""
INTENT_TIMEOUT = 3.0
"""Seconds a local intent (the mixer, the timer store) may take before the turn goes on without it."""


class AgentActivity:
    """Implements the listener's callbacks (``Hearing``) and the speech queue's (``PlayoutHost``)."""

    def __init__(
        self,
        *,
        vad: VAD,
        stt: STT,
        wake: WakeDetector | None,
        options: SessionOptions,
        speeches: SpeechQueue,
        output: AudioOutput,
        emit: Callable[[ev.AgentEvent], None],
        report_error: Callable[[Exception, str], None],
        new_handle: Callable[[bool], SpeechHandle],
        changed: asyncio.Event,
        local_intent: Callable[[str], Awaitable[IntentAnswer | None]] | None = None,
        is_intent: Callable[[str], bool] = lambda text: False,
        recognize: Callable[[AudioFrame], Awaitable[SpeechEvent]] | None = None,
        turn_detector: TurnDetector | None = None,
    ) -> None:
        """``local_intent``: answers a transcript without the LLM ("stop", timers, the time), or says None;
        ``is_intent`` tells, doing nothing, whether it would. ``turn_detector``: ends an utterance that
        sounds complete after a short pause (None: the fixed silence ``min_endpointing_delay``)."""
        self._vad, self._wake, self._options = vad, wake, options
        self._turn_detector = turn_detector
        self._is_intent = is_intent
        self._speeches = speeches
        self._emit, self._report_error, self._new_handle = emit, report_error, new_handle
        self._local_intent = local_intent
        self.sm = StateMachine()
        self._transcriber = Transcriber(stt, options.transcription_timeout, emit, report_error, recognize)
        self._turn_lock = asyncio.Lock()
        self._talk_over = TalkOver(output, self._transcriber)
        self._user_speaking = False
        self._woken = False
        self._wake_pos = 0
        self._listener: Listener | None = None
        self._pause_key: tuple[int, int] | None = None
        """The utterance the user is pausing in (None: speaking, or not addressed)."""
        self._ahead = RepliesAhead(speeches, emit)
        self.tasks = TaskSet(changed)
        """Turn tasks and earcons under way (``drain()`` waits for them)."""
        self.listener_task: asyncio.Task[None] | None = None
        self._timer: asyncio.Task[None] | None = None

    def start(self, audio_input: AudioInput, vad: VAD | None = None) -> None:
        """Listen to ``audio_input`` through ``vad`` (the first agent's own; None: the session's)."""
        o = self._options
        wake = self._wake if o.require_wake_word else None
        judged = None
        silence = o.min_endpointing_delay
        if self._turn_detector is not None:
            judged = Endpointing(self._turn_detector, o.complete_endpointing_delay, o.min_endpointing_delay)
            silence = o.max_endpointing_delay
        settings = dataclasses.replace(self._vad.settings, min_silence_duration=silence)

        def gate() -> WakeGate:
            return WakeGate(o.wake_gate_threshold, o.wake_gate_hold, o.wake_pre_roll)

        self._listener = Listener(audio_input, vad or self._vad, settings, wake, gate, self, judged)
        self.listener_task = asyncio.create_task(self._listener.run(), name="session-listener")
        self._timer = asyncio.create_task(self.sm.run(self._expired), name="session-timer")
        self.rest("started")

    def use_vad(self, vad: VAD | None) -> None:
        """Listen through ``vad`` (the active agent's own; None: the session's)."""
        if self._listener is not None:
            self._listener.use_vad(vad or self._vad)

    async def aclose(self) -> None:
        if self._listener is not None:
            self._listener.tap = None
        await cancel_and_wait(self.listener_task, self._timer, *self.tasks.tasks)
        self._ahead.discard("session closing")
        await self._transcriber.aclose()

    # --- state ------------------------------------------------------------------------------

    def set_state(self, new: AgentState, reason: str, timeout: float | None = None) -> None:
        old = self.sm.move(new, timeout)
        if self._listener is not None:
            self._listener.wake_enabled = new is AgentState.WAITING_FOR_WAKE or new in OVER_A_REPLY
        if old is not new:
            logger.info("agent state", extra={"old": old.value, "new": new.value, "reason": reason})
            self._emit(ev.AgentStateChangedEvent(old, new, reason))

    def rest(self, reason: str, *, follow_up: bool = False) -> None:
        """Back to waiting for the user: a follow-up window after a reply, else the wake word."""
        self._woken = False
        if not self._options.require_wake_word:
            self.set_state(AgentState.LISTENING, reason)
        elif follow_up:
            self.set_state(AgentState.LISTENING, reason, self._listen_timeout(self._options.follow_up_window))
        else:
            self.set_state(AgentState.WAITING_FOR_WAKE, reason)

    def _expired(self, state: AgentState) -> None:
        current = self._speeches.current
        if state is AgentState.LISTENING and current is None:
            if self._woken:
                self._earcon(Earcon.TIMEOUT)
            self.rest("listening timeout" if self._woken else "follow-up window over")
        elif state in (AgentState.THINKING, AgentState.SPEAKING, AgentState.PAUSED) and current is not None:
            o = self._options
            what, limit = {
                AgentState.THINKING: ("no reply audio", o.thinking_timeout),
                AgentState.SPEAKING: ("reply still playing", o.max_speaking_time),
                AgentState.PAUSED: ("talk-over still undecided", pause_bound(self._vad.settings, self._options)),
            }[state]
            self._report_error(APITimeoutError(f"{what} after {limit:g} s; turn dropped"), "agent")
            self._talk_over.forget()
            current.handle.force_interrupt()
        elif state in (AgentState.THINKING, AgentState.SPEAKING, AgentState.PAUSED):
            self.rest("nothing to say")

    def _earcon(self, earcon: Earcon) -> None:
        if self._options.earcons:
            self._speeches.play_earcon(earcon, self.tasks)

    def chime(self, earcon: Earcon) -> None:
        """A tone that means something by itself (a timer): played even with the state earcons off."""
        self._speeches.play_earcon(earcon, self.tasks)

    def _apologize(self) -> None:
        """A turn failed before the user heard any of its reply: say so in words (the error tone without)."""
        apology = self._speeches.apology
        if apology is None:
            self._earcon(Earcon.ERROR)
            return
        logger.info("apology played: the turn failed before any reply was heard")
        self._speeches.play_sound(apology, self.tasks, "apology")

    def _listen_timeout(self, window: float | None = None) -> float:
        """How long listening lasts: ``window`` (default: the listening timeout), or, with the user speaking,
        until their turn ends by itself (the VAD bounds an utterance): a user who began as a reply ended is
        answered when they finish, not cut off by the follow-up window."""
        if self._user_speaking:
            return self._vad.settings.max_speech_duration + self._options.listening_timeout
        return self._options.listening_timeout if window is None else window

    # --- the speech queue's callbacks (PlayoutHost) -------------------------------------------

    def speech_started(self, speech: Speech) -> None:
        if speech.source == "generate_reply":
            self.set_state(AgentState.THINKING, "reply", self._options.thinking_timeout)

    def first_audio(self, speech: Speech) -> None:
        if self.sm.state is AgentState.PAUSED:
            self._talk_over.resume_to = AgentState.SPEAKING  # held until the talk-over is decided
        else:
            self.set_state(AgentState.SPEAKING, "first audio", self._options.max_speaking_time)

    def speech_ended(self, speech: Speech, *, failed: bool) -> None:
        self._talk_over.ended(speech.handle)
        if failed:
            if speech.handle.heard_text:
                self._earcon(Earcon.ERROR)  # the reply broke off: it ends there, with the tone
            else:
                self._apologize()
        if self._speeches.empty and self.sm.state in OVER_A_REPLY:
            self.rest("reply done", follow_up=True)

    # --- the listener's callbacks (Hearing) ---------------------------------------------------

    def on_wake(self, detection: WakeDetected, position: int) -> None:
        state = self.sm.state
        if state in OVER_A_REPLY:
            if not self._stop_for_wake():
                return
        elif state is not AgentState.WAITING_FOR_WAKE:
            return
        self._woken = True
        self._wake_pos = position
        logger.info("wake word", extra={"wake_word": detection.name, "score": round(detection.score, 3)})
        self._emit(ev.WakeWordDetectedEvent(detection.name, detection.score))
        self._earcon(Earcon.LISTENING)
        self.set_state(AgentState.LISTENING, "wake word", self._listen_timeout())
        if self._user_speaking:  # the question follows the wake phrase in one breath
            self._begin_live(position)

    def _stop_for_wake(self) -> bool:
        """The wake word said over a reply: the user addresses the device as they would a quiet one ("Hey
        Jarvis, stop", "Hey Jarvis, what time is it?"), so the reply stops at once, whatever the words after it
        come out as under its echo. False if the reply may not be interrupted."""
        current = self._speeches.current
        if current is not None and not current.handle.allow_interruptions:
            return False
        self._talk_over.forget()
        self._stop_speaking()
        self._ahead.discard("wake word over the reply")
        logger.info("reply stopped: wake word over it")
        return True

    def _stop_speaking(self) -> None:
        """The reply playing, and any queued after it, end now (cut where the user heard them)."""
        current = self._speeches.current
        if current is not None:
            current.handle.force_interrupt()
        self._speeches.drop_queued()

    def on_speech_start(self, position: int) -> None:
        self._user_speaking = True
        state = self.sm.state
        if state is AgentState.LISTENING:
            self.sm.extend(self._listen_timeout())
            self._begin_live(max(position, self._wake_pos))
        if state is not AgentState.WAITING_FOR_WAKE:
            self._emit(ev.UserStartedSpeakingEvent())

    def _addressed(self, utterance: Utterance) -> AudioFrame | None:
        """The part of ``utterance`` spoken to the agent; None if it holds no words yet: the wake phrase's tail,
        or a click or a breath before the question (shorter than the VAD's shortest speech)."""
        start = self._turn_start()
        audio = utterance.after(start)
        if audio.seconds < MIN_TURN_AUDIO:
            return None
        end = utterance.start + utterance.audio.samples_per_channel
        if self._listener is not None and not self._listener.has_speech(start, end):
            return None
        return audio

    def _turn_start(self) -> int:
        """Where the user's words to the agent begin: after the wake word, and the silence after it."""
        return self._listener.voice_start(self._wake_pos) if self._listener is not None else self._wake_pos

    def _begin_live(self, position: int) -> None:
        """Stream the user's words to an STT that takes them as spoken, from ``position`` (interim transcripts
        as they come; the final one soon after the end of speech)."""
        if not self._transcriber.streams or self._listener is None:
            return
        try:
            self._transcriber.begin_live(self._listener.audio_since(position), position)
        except Exception as exc:  # no stream now: the recording is transcribed at the end, as for any STT
            logger.warning("live transcription not started", extra={"error": str(exc)})
            return
        self._listener.tap = self._transcriber.push

    def on_speech_progress(self, speech_duration: float) -> None:
        current = self._speeches.current
        state = self.sm.state
        if (
            current is None
            or self._talk_over.reply is not None
            or state not in (AgentState.THINKING, AgentState.SPEAKING)
            or not current.handle.allow_interruptions
            or speech_duration < self._options.min_interruption_duration
        ):
            return
        self._talk_over.pause(current.handle, state, self._listener.position if self._listener is not None else 0)
        self.set_state(AgentState.PAUSED, "user talking over the reply", pause_bound(self._vad.settings, self._options))
        logger.info("speech paused: user talking over it", extra={"speech_id": current.handle.id})
        self._emit(ev.SpeechPausedEvent(current.handle.id))

    def on_speech_pause(self, utterance: Utterance) -> AudioFrame | None:
        if self._talk_over.reply is None and self.sm.state is not AgentState.LISTENING:
            return None  # not addressed to us
        audio = self._addressed(utterance)
        if audio is None:
            return None  # the question is still to come
        if not self._options.speculative_transcription or self._transcriber.live:
            return audio  # a live transcription is already on these words
        self._pause_key = utterance.key
        self._transcriber.start_early(utterance.key, audio)
        if self._options.preemptive_generation and self._talk_over.reply is None:
            key = utterance.key
            made = self._ahead.make(
                key, lambda: self._transcriber.early_text(key), lambda t: self._may_reply_ahead(key, t), self._reply_to
            )
            self.tasks.add(asyncio.create_task(made, name="session-ahead"))
        return audio

    def on_speech_resume(self) -> None:
        """The pause was not the end: the early work on it is dropped (stopped at the engines)."""
        self._pause_key = None
        self._transcriber.cancel()
        self._ahead.discard("user went on speaking")

    async def left_open(self, key: tuple[int, int]) -> bool:
        if self._pause_key != key:
            return False
        text = await self._transcriber.early_text(key)
        return text is not None and leaves_open(text)

    def _may_reply_ahead(self, key: tuple[int, int], text: str) -> bool:
        """Still in the same pause, addressed, and words the LLM would answer (not a local intent)."""
        return (
            self._pause_key == key
            and self._talk_over.reply is None
            and self.sm.state is AgentState.LISTENING
            and has_words(text)
            and not self._is_intent(text)
        )

    def _reply_to(self, text: str) -> Speech:
        return Speech(self._new_handle(self._options.allow_interruptions), "generate_reply", user_input=text)

    def on_speech_end(self, utterance: Utterance) -> None:
        self._user_speaking = False
        self._pause_key = None
        if self._listener is not None:
            self._listener.tap = None
        self._transcriber.end_live()
        self.tasks.add(asyncio.create_task(self._take_turn(utterance), name="session-turn"))

    def on_error(self, error: Exception, source: str) -> None:
        self._report_error(error, source)

    # --- turns ------------------------------------------------------------------------------

    async def _take_turn(self, utterance: Utterance) -> None:
        async with self._turn_lock:
            paused = self._talk_over.reply
            if paused is None and self.sm.state is not AgentState.LISTENING:
                self._transcriber.drop_live()
                self._ahead.discard("not addressed")
                return  # not addressed to us: no wake word yet, or a short sound over the reply
            audio = self._addressed(utterance) if paused is None else utterance.after(self._turn_start())
            if audio is None:
                self._transcriber.drop_live()
                self._ahead.discard("too short")
                self.sm.extend(self._listen_timeout())
                return
            self._emit(ev.UserStoppedSpeakingEvent(utterance.speech_duration))
            transcript = await self._transcriber.final(utterance.key, audio)
            ahead = self._ahead.claim(utterance.key, transcript.text if transcript is not None else None)
            used = False
            try:
                used = await self._answer(utterance, transcript, paused, ahead)
            finally:
                if ahead is not None and not used:
                    self._ahead.drop(ahead, "turn not answered by the LLM")

    async def _answer(
        self, utterance: Utterance, transcript: Transcript | None, paused: SpeechHandle | None, ahead: Ahead | None
    ) -> bool:
        """Answer the turn now that its transcript is known; True if it took ``ahead``, the reply made for it."""
        if paused is not None:
            if self._talk_over.reply is paused:
                transcript = await self._talk_over.words(utterance, transcript, self._listener)
            if self._talk_over.reply is not paused:
                return False  # the paused reply ended meanwhile (its deadline, or the session closing)
            if transcript is None:
                self._resume(paused)
                return False
            await self._talk_over.cut(paused)
        text = transcript.text if transcript else ""
        confidence = transcript.confidence if transcript else 0.0
        if paused is None and not has_words(text):
            if self.sm.state is AgentState.LISTENING:
                if transcript is None:
                    self._apologize()  # the user spoke and we could not hear it: say so
                self.sm.extend(self._listen_timeout())
            return False
        self._emit(ev.UserInputTranscribedEvent(text, is_final=True, confidence=confidence))
        logger.info("user turn", extra={"words": len(text.split()), "chars": len(text)})
        if await self._intent(text, utterance, transcript):
            return False
        self.set_state(AgentState.THINKING, "user turn", self._options.thinking_timeout)
        if ahead is not None:
            speech = ahead.speech
            speech.turn, speech.transcript = utterance, transcript
        else:
            handle = self._new_handle(self._options.allow_interruptions)
            speech = Speech(handle, "generate_reply", user_input=text, turn=utterance, transcript=transcript)
        self._speeches.enqueue(speech, user_initiated=False)
        return ahead is not None

    async def _intent(self, text: str, utterance: Utterance, transcript: Transcript | None) -> bool:
        """Answer ``text`` locally if it is an intent; True if it was (the LLM is not asked)."""
        if self._local_intent is None:
            return False
        try:
            answer = await asyncio.wait_for(self._local_intent(text), INTENT_TIMEOUT)
        except (Exception, TimeoutError) as exc:
            logger.error("local intent failed: the LLM answers instead", exc_info=exc)
            return False
        if answer is None:
            return False
        logger.info("local intent", extra={"intent": answer.kind.value})
        if answer.stop:
            self._stop_speaking()
            self.rest("stopped by the user")
            return True
        self.set_state(AgentState.THINKING, "local intent", self._options.thinking_timeout)
        handle = self._new_handle(self._options.allow_interruptions)
        speech = Speech(handle, "say", text=answer.say, user_input=text, turn=utterance, transcript=transcript)
        self._speeches.enqueue(speech, user_initiated=False)
        return True

    def _resume(self, handle: SpeechHandle) -> None:
        if self._talk_over.resume(handle):
            o, state = self._options, self._talk_over.resume_to
            timeout = o.max_speaking_time if state is AgentState.SPEAKING else o.thinking_timeout
            self.set_state(state, "false interruption", timeout)
            logger.info("false interruption: resuming", extra={"speech_id": handle.id})
            self._emit(ev.AgentFalseInterruptionEvent(handle.id))
