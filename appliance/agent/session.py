"""The agent session: the public API (LiveKit Agents' shape) over the turn loop and the speech queue.

``AgentSession(vad=, stt=, llm=, tts=, wake=)`` takes any engines that implement the stage interfaces;
``start(agent, audio_input=, audio_output=)`` begins listening; ``say()`` and ``generate_reply()`` queue
speech and return its handle; ``interrupt()`` cuts it; ``update_agent()`` swaps the instructions.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.agent import events as ev
from appliance.agent.activity import AgentActivity
from appliance.agent.agent import HOOK_TIMEOUT, Agent, StopResponse
from appliance.agent.generation import Handoff, ToolUse
from appliance.agent.inline import InlineTask
from appliance.agent.options import SessionOptions
from appliance.agent.playout import Speech, SpeechQueue
from appliance.agent.prefill import Prefill, Request
from appliance.agent.speech import SpeechHandle
from appliance.agent.state import AgentState
from appliance.agent.toolcalls import ToolRunner
from appliance.agent.tools import RunContext, ToolError
from appliance.audio.earcon import Earcon
from appliance.audio.frame import AudioFrame
from appliance.audio.io import AudioInput, AudioOutput
from appliance.errors import ApplianceError
from appliance.intents.grammar import match
from appliance.intents.handler import IntentAnswer, IntentHandler
from appliance.llm.base import LLM, ChatContext, ChatItem, ChatMessage, FunctionCall, Role
from appliance.llm.chat import AgentHandoffItem, FunctionOutputItem, snapshot
from appliance.stt.base import STT, SpeechEvent
from appliance.tts.base import TTS, synthesize_all
from appliance.turn.base import TurnDetector
from appliance.utils.aio import cancel_and_wait
from appliance.vad.base import VAD
from appliance.wake.base import WakeDetector

logger = logging.getLogger(__name__)

WARM_UP_TIMEOUT = 120.0
"""Seconds the LLM may take to take in the instructions at start."""
APOLOGY_TIMEOUT = 20.0
"""Seconds the apology may take to synthesize at start."""


class AgentSession(ev.EventEmitter):
    """Owns the conversation: waits for the wake word, listens, thinks, speaks, and yields when talked over."""

    def __init__(
        self,
        *,
        vad: VAD,
        stt: STT,
        llm: LLM,
        tts: TTS,
        wake: WakeDetector | None = None,
        options: SessionOptions | None = None,
        userdata: Any = None,
        intents: IntentHandler | None = None,
        turn_detector: TurnDetector | None = None,
    ) -> None:
        """``intents``: answers "stop", timers, the time and the volume without the LLM (None: the LLM answers
        everything). ``turn_detector``: judges at each pause whether the user has finished, so a complete
        sentence is answered after a short silence and an unfinished one is waited for (None: a fixed
        silence ends every turn)."""
        super().__init__()
        self._turn_detector = turn_detector
        self.intents = intents
        self.userdata = userdata
        """Whatever the application keeps for its tools (``RunContext.userdata``)."""
        self._tool_tasks: set[asyncio.Task[Any]] = set()
        """Handovers and uninterruptible tool calls under way (cancelled at close)."""
        self.options = options or SessionOptions()
        if self.options.require_wake_word and wake is None:
            raise ApplianceError("a session that requires the wake word needs a wake-word detector")
        self._vad, self._stt, self._llm, self._tts, self._wake = vad, stt, llm, tts, wake
        self.chat_ctx = ChatContext()
        self._agent: Agent | None = None
        self._speech_ids = 0
        self._speeches: SpeechQueue | None = None
        self._activity: AgentActivity | None = None
        self._changed = asyncio.Event()
        """Set whenever a speech or a turn task ends (what ``drain()`` waits on)."""
        self._prefill = Prefill(self._next_request)

    def sibling(self, options: SessionOptions | None = None) -> AgentSession:
        """A new session over the same engines: a second conversation (a room's user), its own state and
        history; the engines are shared, not copied, and no intents (they act on this device)."""
        return AgentSession(
            vad=self._vad,
            stt=self._stt,
            llm=self._llm,
            tts=self._tts,
            wake=self._wake,
            options=options or self.options,
            userdata=self.userdata,
            turn_detector=self._turn_detector,
        )

    @property
    def state(self) -> AgentState:
        return self._activity.sm.state if self._activity else AgentState.INITIALIZING

    @property
    def current_agent(self) -> Agent | None:
        return self._agent

    @property
    def tts(self) -> TTS:
        return self._tts

    async def start(self, agent: Agent, *, audio_input: AudioInput, audio_output: AudioOutput) -> None:
        """Load the instructions into the LLM (its prompt cache) and start listening."""
        self._agent = agent
        self.chat_ctx.items = [ChatMessage(Role.SYSTEM, agent.instructions)]
        self.chat_ctx.items += agent.chat_ctx.copy(exclude_instructions=True).items
        # what the first reply will be given: the budgeted conversation and the agent's tools
        llm, ctx, tools = self._next_request()
        await asyncio.wait_for(llm.warm_up(ctx, tools=tools), WARM_UP_TIMEOUT)
        self.on("agent_state_changed", self._prefill.on_state)
        self.on("user_started_speaking", self._prefill.on_speech)
        self._speeches = SpeechQueue(
            llm=self._llm,
            tts=self._tts,
            output=audio_output,
            options=self.options,
            chat_ctx=lambda: self.chat_ctx,
            add_item=self._add_item,
            emit=self.emit,
            report_error=self.report_error,
            changed=self._changed,
            tool_use=self._tool_use,
            end_of_turn=self._end_of_turn,
            engines=self._engines,
            agent=lambda: self._agent,
        )
        self._activity = AgentActivity(
            vad=self._vad,
            stt=self._stt,
            wake=self._wake,
            options=self.options,
            speeches=self._speeches,
            output=audio_output,
            emit=self.emit,
            report_error=self.report_error,
            new_handle=lambda allow: self._handle(allow, True),
            changed=self._changed,
            local_intent=self._local_intent if self.intents is not None else None,
            is_intent=lambda text: self.intents is not None and match(text) is not None,
            recognize=self._recognize,
            turn_detector=self._turn_detector,
        )
        self._speeches.apology = await self._prepare_apology()
        await self._hook(agent.on_enter(), agent, "on_enter")  # at start there is no previous agent to keep
        self._speeches.start(self._activity)
        self._activity.start(audio_input, agent.vad)

    async def _prepare_apology(self) -> AudioFrame | None:
        """The apology as audio, made now with the voice that needs no network, so it plays when nothing else
        can speak."""
        text = self.options.apology.strip()
        if not text:
            return None
        try:
            return await asyncio.wait_for(synthesize_all(self._tts.offline(), text), APOLOGY_TIMEOUT)
        except (Exception, TimeoutError) as exc:
            logger.warning("apology not prepared: a failed turn plays the error tone", extra={"error": str(exc)})
            return None

    async def _recognize(self, audio: AudioFrame) -> SpeechEvent:
        """An utterance through the active agent's ``stt_node``, with its own STT if it has one."""
        agent = self._agent
        if agent is None:
            return await self._stt.recognize(audio)
        return await agent.stt_node(audio, agent.stt or self._stt)

    async def _local_intent(self, text: str) -> IntentAnswer | None:
        """The intent ``text`` asks for, carried out (None: not one; the LLM answers it)."""
        intent = match(text)
        if intent is None or self.intents is None:
            return None
        replies = [m for m in self.chat_ctx.messages() if m.role is Role.ASSISTANT and m.content]
        return await self.intents.handle(intent, last_reply=replies[-1].content if replies else None)

    def update_agent(self, agent: Agent) -> None:
        """Hand the conversation to ``agent``: its instructions, tools and engines from the next reply on (the
        conversation goes on). The hooks follow: the old agent's ``on_exit``, a handoff item in the history,
        then the new one's ``on_enter``; if that fails, the previous agent is back."""
        old = self._agent
        self._set_agent(agent)
        if self._speeches is not None:
            task = asyncio.create_task(self._hand_over(old, agent), name="session-handover")
            self._tool_tasks.add(task)
            task.add_done_callback(self._tool_tasks.discard)

    def _set_agent(self, agent: Agent) -> None:
        self._agent = agent
        if self._activity is not None:
            self._activity.use_vad(agent.vad)
        system = [m for m in self.chat_ctx.messages() if m.role is Role.SYSTEM]
        if system:
            system[0].content = agent.instructions
        else:
            self.chat_ctx.items.insert(0, ChatMessage(Role.SYSTEM, agent.instructions))

    async def _hand_over(self, old: Agent | None, new: Agent) -> bool:
        """The hooks of a handover already made (``_set_agent``); False if ``new`` refused and ``old`` is back."""
        if old is not None:
            await self._hook(old.on_exit(), old, "on_exit")
        item = AgentHandoffItem(old.name if old is not None else None, new.name)
        self._add_chat_item(item)
        if await self._hook(new.on_enter(), new, "on_enter"):
            return True
        if old is not None and self._agent is new:
            logger.warning("handover refused: the previous agent stays", extra={"old": old.name, "new": new.name})
            self._set_agent(old)
            self._add_chat_item(AgentHandoffItem(new.name, old.name))
        return False

    async def _hook(self, hook: Awaitable[None], agent: Agent, name: str) -> bool:
        try:
            await asyncio.wait_for(hook, HOOK_TIMEOUT)
        except (Exception, TimeoutError) as exc:
            logger.error("agent hook failed", exc_info=exc, extra={"agent": agent.name, "hook": name})
            self.report_error(exc if isinstance(exc, Exception) else TimeoutError(name), "agent")
            return False
        return True

    async def run_inline(self, task: InlineTask[Any], call: RunContext, result: asyncio.Future[Any]) -> None:
        """The conversation goes to ``task`` until ``result`` is set (its ``complete()``), then back to the agent
        that called it; the reply that made ``call`` ends meanwhile. A task that cannot start, or takes longer
        than its ``timeout``, raises ``ToolError`` in the tool."""
        caller = self._agent
        assert caller is not None
        call.detach(task.name)
        self._set_agent(task)
        self._add_chat_item(AgentHandoffItem(caller.name, task.name))
        try:
            if not await self._hook(task.on_enter(), task, "on_enter"):
                raise ToolError(f"{task.name} could not start")
            self.generate_reply()  # the task speaks first: it asks what it is for
            try:
                await asyncio.wait_for(asyncio.shield(result), task.timeout)
            except TimeoutError:
                raise ToolError(f"{task.name} got no answer within {task.timeout:g} s") from None
        finally:
            if self._agent is task:
                self._set_agent(caller)
                self._add_chat_item(AgentHandoffItem(task.name, caller.name))
            if not result.done():
                result.cancel()
            await self._hook(task.on_exit(), task, "on_exit")

    def _late_answer(self, output: FunctionOutputItem) -> None:
        """A call that awaited a task has its answer: it replaces the placeholder, and the agent replies to it."""
        for item in self.chat_ctx.items:
            if isinstance(item, FunctionOutputItem) and item.call_id == output.call_id:
                item.output, item.is_error = output.output, output.is_error
                self.emit(ev.ConversationItemUpdatedEvent(snapshot(item)))
                break
        else:
            self._add_chat_item(output)
        if self._speeches is not None:
            self.generate_reply()

    async def _handoff_in_reply(self, handle: SpeechHandle, target: Agent) -> Handoff:
        """A tool returned ``target``: hand over, and go on with the reply as the agent now active."""
        old = self._agent
        self._set_agent(target)
        await self._hand_over(old, target)
        agent = self._agent
        assert agent is not None
        ctx = self.options.budgeted(self.chat_ctx)
        tools = self._tool_use(handle)
        return Handoff(agent, ctx, agent.llm or self._llm, tools.runner if tools is not None else None)

    async def _end_of_turn(self, chat_ctx: ChatContext, new_message: ChatMessage) -> bool:
        """The agent's ``on_end_of_turn``; False when it stops the reply (a failure lets the reply go ahead)."""
        agent = self._agent
        if agent is None:
            return True
        try:
            await asyncio.wait_for(agent.on_end_of_turn(chat_ctx, new_message), HOOK_TIMEOUT)
        except StopResponse:
            return False
        except (Exception, TimeoutError) as exc:
            logger.error("on_end_of_turn failed: replying anyway", exc_info=exc, extra={"agent": agent.name})
        return True

    def _next_request(self) -> Request:
        """What the reply to the user's next turn will go to: the model, the conversation, the tools."""
        agent = self._agent
        tools = list({tool.name: tool.spec for tool in agent.tools}.values()) if agent is not None else []
        offered = list(agent.tools_before_words(tools)) if agent is not None else []
        return self._engines()[0], self.options.budgeted(self.chat_ctx), offered

    def _engines(self) -> tuple[LLM, TTS]:
        agent = self._agent
        return (agent.llm or self._llm, agent.tts or self._tts) if agent is not None else (self._llm, self._tts)

    def announce(self, text: str, earcon: Earcon | None = None) -> SpeechHandle:
        """Something the device says by itself (a timer is done): ``earcon`` first (skipped over a reply), then
        the words, queued behind whatever is playing."""
        if earcon is not None and self._activity is not None:
            self._activity.chime(earcon)
        return self.say(text)

    def say(self, text: str, *, allow_interruptions: bool | None = None, add_to_chat_ctx: bool = True) -> SpeechHandle:
        """Speak ``text`` (after any speech already queued)."""
        handle = self._handle(allow_interruptions, add_to_chat_ctx)
        self._running().enqueue(Speech(handle, "say", text=text), user_initiated=True)
        return handle

    def generate_reply(
        self, *, user_input: str | None = None, instructions: str | None = None, allow_interruptions: bool | None = None
    ) -> SpeechHandle:
        """Have the LLM answer; ``user_input`` joins the conversation when this reply starts (after what is
        playing now has been recorded), ``instructions`` steer this reply only."""
        handle = self._handle(allow_interruptions, True)
        speech = Speech(handle, "generate_reply", instructions=instructions, user_input=user_input or None)
        self._running().enqueue(speech, user_initiated=True)
        return handle

    def interrupt(self) -> None:
        """Cut the current speech (if it allows it) and drop queued ones that allow it."""
        if self._speeches is not None:
            self._speeches.interrupt()

    def report_error(self, error: Exception, source: str, *, recoverable: bool = True) -> None:
        """Tell subscribers of a failure (a stage, or a device that went away)."""
        self.emit(ev.ErrorEvent(error, source, recoverable))

    async def wait(self) -> None:
        """Until the input has ended (a recording), failed for good (raised here) or was stopped."""
        listener = self._activity.listener_task if self._activity else None
        if listener is not None:
            await asyncio.wait({listener})  # never cancels it, and a stopped listener is no error
            if not listener.cancelled() and (exc := listener.exception()) is not None:
                raise exc

    async def drain(self) -> None:
        """Until the input has ended and every turn it started has been answered (bound it with a timeout)."""
        await self.wait()
        activity, speeches = self._activity, self._speeches
        if activity is None or speeches is None:
            return
        while activity.tasks or not speeches.idle:
            self._changed.clear()
            await self._changed.wait()

    async def stop_listening(self) -> None:
        """Take no new turns: the input is no longer read (what is being said or done goes on)."""
        if self._activity is not None:
            await cancel_and_wait(self._activity.listener_task)

    async def finish_sentence(self, within: float) -> bool:
        """Stop taking turns, drop queued speech, and let the current reply play to the end of the sentence
        it is in, at most ``within`` seconds. True if the speaker fell silent in time."""
        await self.stop_listening()
        if self._speeches is None:
            return True
        self._speeches.drop_queued()
        self._speeches.finish_sentence()
        return await self._speeches.output.wait_idle(within)

    def heard_so_far(self) -> ChatMessage | None:
        """The reply playing now, as far as it was heard (``SpeechQueue.heard_so_far``); safe from any thread."""
        return self._speeches.heard_so_far() if self._speeches is not None else None

    async def aclose(self) -> None:
        if self._speeches is not None:
            await self._speeches.aclose()
        await cancel_and_wait(*self._tool_tasks)
        await self._prefill.aclose()
        if self._activity is not None:
            await self._activity.aclose()
            if self._activity.sm.state is not AgentState.CLOSED:
                self._activity.set_state(AgentState.CLOSED, "closed")

    def _running(self) -> SpeechQueue:
        if self._speeches is None:
            raise ApplianceError("the session has not started: await session.start(...) first")
        return self._speeches

    def _handle(self, allow_interruptions: bool | None, add_to_chat_ctx: bool) -> SpeechHandle:
        self._speech_ids += 1
        allow = self.options.allow_interruptions if allow_interruptions is None else allow_interruptions
        return SpeechHandle(f"speech_{self._speech_ids}", allow_interruptions=allow, add_to_chat_ctx=add_to_chat_ctx)

    def _tool_use(self, handle: SpeechHandle) -> ToolUse | None:
        """The current agent's tools for one reply (None: it has none)."""
        tools = self._agent.tools if self._agent is not None else []
        if not tools:
            return None

        def context(call: FunctionCall, values: dict[str, Any], speak: Callable[[str], None]) -> RunContext:
            return RunContext(self, handle, call.call_id, values, speak)

        runner = ToolRunner(tools, self._add_chat_item, context, self._tool_tasks, self._late_answer)
        return ToolUse(
            runner,
            self.options.max_fnc_steps,
            lambda calls, outputs: self.emit(ev.FunctionToolsExecutedEvent(tuple(calls), tuple(outputs))),
            lambda steps: self.emit(ev.FunctionChainTooLongEvent(steps)),
            lambda target: self._handoff_in_reply(handle, target),
        )

    def _add_chat_item(self, item: ChatItem) -> None:
        self.chat_ctx.items.append(item)
        self.emit(ev.ConversationItemAddedEvent(snapshot(item)))  # a listener cannot change the history

    def _add_item(self, role: Role, text: str, interrupted: bool = False, item_id: str | None = None) -> ChatMessage:
        item = (
            ChatMessage(role, text, interrupted=interrupted)
            if item_id is None
            else ChatMessage(role, text, item_id, interrupted)
        )
        self.chat_ctx.items.append(item)
        self.emit(ev.ConversationItemAddedEvent(snapshot(item)))
        return item
