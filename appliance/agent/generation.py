"""The speaking half of the agent: text or LLM tokens -> Piper sentence by sentence -> the audio output."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance.agent.agent import Agent, ask
from appliance.agent.events import TurnMetrics
from appliance.agent.listener import Utterance
from appliance.agent.speakable import speakable_text
from appliance.agent.toolcalls import ToolCallMetrics, ToolRunner
from appliance.agent.transcription import Transcript
from appliance.agent.turns import Spoken, heard_text
from appliance.audio.io import AudioOutput, PlaybackFinished
from appliance.llm.base import (
    LLM,
    ChatContext,
    FunctionCall,
    FunctionOutputItem,
    LLMMetrics,
    LLMStream,
    ToolChoice,
    ToolSpec,
)
from appliance.tts.base import TTS, SynthesizedAudio, TTSMetrics
from appliance.utils.aio import Channel, cancel_and_wait

logger = logging.getLogger(__name__)

PLAYOUT_SLACK = 5.0
"""Seconds past the audio's own length that playing it out may take before it counts as stuck."""


@dataclass
class Playout:
    """What one speech sent to the speaker and how it went (filled in as it happens, so a cut
    speech still knows what it had said)."""

    spoken: list[Spoken] = field(default_factory=list)
    text: str = ""
    """The whole text generated (or given), heard or not."""
    segment: int | None = None
    """The output's segment id, once flushed."""
    finished: PlaybackFinished | None = None
    llm: LLMMetrics | None = None
    tts: TTSMetrics | None = None
    failed: bool = False
    """The LLM or TTS failed partway: only what reached the speaker was said."""
    tool_steps: int = 0
    tool_calls: tuple[ToolCallMetrics, ...] = ()
    preemptive: bool = False
    """Started on the early transcript, before the turn was confirmed."""

    @property
    def audio_seconds(self) -> float:
        return sum(s.seconds for s in self.spoken)

    def heard(self) -> str:
        if self.failed and (self.finished is None or not self.finished.interrupted):
            return " ".join(s.text.strip() for s in self.spoken).strip()
        if self.finished is None or not self.finished.interrupted:
            return self.text.strip()
        return heard_text(self.spoken, self.finished.playback_position)


async def _play(
    tts_stream: AsyncIterable[SynthesizedAudio],
    output: AudioOutput,
    playout: Playout,
    on_audio: Callable[[], None],
    hold: asyncio.Event | None = None,
) -> None:
    first = True
    async for audio in tts_stream:
        if first and hold is not None:
            await hold.wait()  # a reply made ahead: nothing plays before the turn is confirmed
        await output.capture_frame(audio.frame)
        if audio.text or not playout.spoken:
            playout.spoken.append(Spoken(audio.text, audio.frame.seconds))
        else:  # a later piece of the same sentence
            last = playout.spoken[-1]
            playout.spoken[-1] = Spoken(last.text, last.seconds + audio.frame.seconds)
        if first:
            first = False
            on_audio()


async def _finish(output: AudioOutput, playout: Playout) -> None:
    playout.segment = output.flush()
    bound = playout.audio_seconds + PLAYOUT_SLACK
    try:
        playout.finished = await asyncio.wait_for(output.wait_for_playout(playout.segment), bound)
    except TimeoutError:
        logger.error("playback did not finish", extra={"seconds": bound})
        output.clear_buffer()
        playout.finished = PlaybackFinished(0.0, True)


async def speak_text(
    text: str,
    tts: TTS,
    output: AudioOutput,
    playout: Playout,
    on_audio: Callable[[], None],
    agent: Agent | None = None,
) -> None:
    """Say ``text`` (through ``agent``'s ``tts_node``, if given); returns when it has played out (cancel to cut
    it)."""
    playout.text = text
    stream = tts.synthesize(text)
    audio = agent.tts_node(stream) if agent is not None else stream
    try:
        await _play(audio, output, playout, on_audio)
    finally:
        if audio is not stream:
            await _close(audio)
        await stream.aclose()
        playout.tts = stream.metrics
    await _finish(output, playout)


@dataclass
class ToolUse:
    """The tools a reply may call, and what becomes of the calls."""

    runner: ToolRunner
    max_steps: int
    """Tool rounds one reply may take (nested ones included); past it the reply says it could not finish."""
    on_executed: Callable[[list[FunctionCall], list[FunctionOutputItem]], None]
    on_too_long: Callable[[int], None]
    handoff: Callable[[Agent], Awaitable[Handoff]] | None = None
    """Hands the conversation to the agent a tool returned; what the reply goes on with."""
    steps: int = 0
    metrics: list[ToolCallMetrics] = field(default_factory=list)


@dataclass
class Handoff:
    """After a handover, what the rest of the reply uses: the new agent, its context, model and tools."""

    agent: Agent
    chat_ctx: ChatContext
    llm: LLM
    runner: ToolRunner | None


async def _close(chunks: AsyncIterator[Any]) -> None:
    """Close a node's iterator (an async generator stops its request in its ``finally``)."""
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()


class _Metered(LLM):
    """The model as a node is given it: the first request's stream is kept, for the turn's metrics."""

    def __init__(self, llm: LLM) -> None:
        self.llm, self.capabilities, self.label = llm, llm.capabilities, llm.label
        self.first: LLMStream | None = None

    def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto"
    ) -> LLMStream:
        choice: dict[str, ToolChoice] = {"tool_choice": "required"} if tool_choice == "required" else {}
        stream = self.llm.chat(chat_ctx, tools=tools, **choice)
        if self.first is None:
            self.first = stream
        return stream


COULD_NOT_FINISH = "Sorry, I couldn't complete that."


async def speak_reply(
    chat_ctx: ChatContext,
    llm: LLM,
    tts: TTS,
    output: AudioOutput,
    playout: Playout,
    on_audio: Callable[[], None],
    tools: ToolUse | None = None,
    agent: Agent | None = None,
    hold: asyncio.Event | None = None,
) -> None:
    """Generate a reply and speak each sentence as soon as it is complete, while the rest is generated. With
    ``tools``, a step that asks for calls runs them and the model is asked again with their answers, until it
    answers in words (or the steps run out). ``agent``: whose ``llm_node`` each request goes through (None:
    the plain model). ``hold``: a reply started before the user's turn was confirmed waits for it to be set
    before its first audio plays and before any tool runs (nothing the user did not ask for happens)."""
    tts_stream = tts.stream()
    texts: list[str] = []
    part_start = True

    def say(text: str) -> None:
        if text:
            texts.append(text)
            tts_stream.push_text(text)

    def readable(out: str) -> None:
        nonlocal part_start
        if out and part_start and texts and not texts[-1].endswith(" "):
            out = " " + out.lstrip()  # a new part (after a tool call or a filler) is a new sentence
        if out:
            part_start = False
        say(out)

    def end_part() -> None:
        nonlocal part_start
        part_start = True

    def filler(text: str) -> None:
        """A tool's "one moment": a sentence of its own, spoken at once."""
        end_part()
        say(f" {text.strip()} ")
        tts_stream.flush()

    runner = tools.runner if tools is not None else None
    ctx, model, speaker = chat_ctx, llm, agent
    asked: set[tuple[str, str]] = set()
    """Every call run in this reply, by name and arguments."""
    words_only = False
    """The model asked again for calls it has the answers to: the next request offers no tools."""

    async def step() -> list[FunctionCall]:
        """One request: its words to the speaker, its calls returned."""
        specs = [tool.spec for tool in runner.tools.values()] if runner is not None and not words_only else []
        metered = _Metered(model)
        chunks = speaker.llm_node(ctx, specs, metered) if speaker is not None else ask(metered, ctx, specs)
        calls: list[FunctionCall] = []
        words: Channel[str] = Channel()

        async def read() -> None:
            try:
                async for chunk in chunks:
                    if chunk.delta:
                        words.send(chunk.delta)
                    calls.extend(chunk.tool_calls)
            except Exception as exc:  # the model's failure is raised where its words are read
                words.fail(exc)
            finally:
                words.close()

        reader = asyncio.create_task(read(), name="reply-step")
        spoken = speaker.transcription_node(words) if speaker is not None else speakable_text(words)
        try:
            async for text in spoken:
                readable(text)
            end_part()
        finally:
            await cancel_and_wait(reader)
            await _close(spoken)
            await _close(chunks)
            if playout.llm is None and metered.first is not None:
                playout.llm = metered.first.metrics  # the first request's: the turn's time to first token
        return calls

    async def pump() -> None:
        nonlocal ctx, model, runner, speaker, words_only
        try:
            while calls := await step():
                if tools is None or runner is None or words_only:
                    break
                again = {(c.name, _same_arguments(c.arguments)) for c in calls}
                if again <= asked:  # a small model repeats a call whose answer it has: it is asked for words
                    logger.info("repeated tool call not run again", extra={"tools": sorted(n for n, _ in again)})
                    words_only = True
                    continue
                asked.update(again)
                if tools.steps >= tools.max_steps:
                    logger.warning("function chain too long", extra={"max_steps": tools.max_steps})
                    tools.on_too_long(tools.max_steps)
                    say(" " + COULD_NOT_FINISH)
                    break
                tools.steps += 1
                if hold is not None:
                    await hold.wait()
                if ctx is chat_ctx:
                    ctx = chat_ctx.copy()
                outputs = await runner.run(calls, ctx, speak=filler)
                tools.on_executed(calls, outputs)
                if runner.detached:
                    break  # a call awaits a task with the user: the task's turns come next, then its answer
                if runner.handoff_to is not None and tools.handoff is not None:
                    after = await tools.handoff(runner.handoff_to)
                    tools.metrics.extend(runner.metrics)
                    ctx, model, runner, speaker = after.chat_ctx, after.llm, after.runner, after.agent
        finally:
            if tools is not None and runner is not None:
                tools.metrics.extend(runner.metrics)
            tts_stream.end_input()  # even on failure, so the speaking side ends with what it has

    pump_task = asyncio.create_task(pump(), name="reply-to-tts")
    audio = agent.tts_node(tts_stream) if agent is not None else tts_stream
    try:
        await _play(audio, output, playout, on_audio, hold)
        await pump_task  # raises the LLM's error, if it failed
    finally:
        await cancel_and_wait(pump_task)
        if audio is not tts_stream:
            await _close(audio)
        await tts_stream.aclose()
        playout.text = "".join(texts)
        playout.tts = tts_stream.metrics
        if tools is not None:
            playout.tool_steps, playout.tool_calls = tools.steps, tuple(tools.metrics)
    await _finish(output, playout)


def turn_metrics(
    speech_id: str, turn: Utterance | None, transcript: Transcript | None, playout: Playout
) -> TurnMetrics:
    """Where the time of a turn went, from the utterance that asked, its transcript and the reply's playout."""
    finished, llm, tts = playout.finished, playout.llm, playout.tts
    eos = turn.eos_time if turn else None
    started = finished.started_at if finished else None
    verdict = turn.verdict if turn else None
    return TurnMetrics(
        speech_id=speech_id,
        end_of_utterance_delay=turn.decided_at - turn.eos_time if turn else None,
        transcription_delay=transcript.at - eos if transcript and eos is not None else None,
        stt_latency=transcript.stt_latency if transcript else None,
        stt_speculative=bool(transcript and transcript.speculative),
        turn_completion=verdict.probability if verdict else None,
        turn_detector_latency=verdict.seconds if verdict else None,
        preemptive=playout.preemptive,
        llm_ttft=llm.ttft if llm else None,
        llm_ttlt=llm.duration if llm else None,
        llm_prompt_tokens=llm.prompt_tokens if llm else 0,
        llm_cached_tokens=llm.cached_tokens if llm else 0,
        llm_completion_tokens=llm.completion_tokens if llm else 0,
        tts_ttfb=tts.ttfb if tts and tts.ttfb >= 0 else None,
        eos_to_first_audio=started - eos if started is not None and eos is not None else None,
        played=finished.playback_position if finished else 0.0,
        interrupted=bool(finished and finished.interrupted),
        stt_provider=transcript.provider if transcript else "",
        llm_provider=llm.provider if llm else "",
        tts_provider=tts.provider if tts else "",
        stt_failed=transcript.failed_attempts if transcript else (),
        llm_failed=llm.failed_attempts if llm else (),
        tts_failed=tts.failed_attempts if tts else (),
        tool_steps=playout.tool_steps,
        tool_calls=playout.tool_calls,
    )


def _same_arguments(arguments: str) -> str:
    """Arguments as compared between calls: the JSON's meaning (keys sorted, spacing gone), else the text."""
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments.strip()
