"""``appliance-cli bench --answers``: are the answers worth hearing, and do they stay so over a conversation?

- Questions (``qa.toml``): a short factual or everyday question and the words a right answer contains, asked as
  text and spoken (SYNTHETIC speech: the Piper voice, resampled to 16 kHz, then the STT, then the LLM).
- A 20-turn conversation through the agent session (its history budget, its cached prompt): the time to the
  first token and to the first reply audio per turn, and replies that repeat an earlier reply word for word.
- Local intents: spoken variants, how many the grammar recognizes through the STT, and the time from the
  decided turn to the intent's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import tempfile
import time
import tomllib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from text_to_num import alpha2digit

from appliance.agent import DEFAULT_INSTRUCTIONS, Agent, AgentSession, AgentState, SessionOptions
from appliance.agent import events as ev
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import FileInput, RecordingOutput
from appliance.audio.resample import resample
from appliance.engines import EngineChoice, Models
from appliance.intents.grammar import IntentKind, match
from appliance.intents.handler import IntentHandler
from appliance.intents.timers import TimerClock, TimerStore
from appliance.intents.volume import Mixer
from appliance.llm.base import LLM, ChatContext, Role
from appliance.stt.base import STT
from appliance.tts.base import TTS
from appliance.tts.piper import PiperSettings
from appliance.utils.stats import percentile

QA_FILE = Path(__file__).with_name("qa.toml")
CONVERSATION = (
    "Hi, my name is Sam.",
    "What is the capital of Spain?",
    "How many legs does a cat have?",
    "What is the capital of Canada?",
    "Give me a tip for sleeping better.",
    "What is seven plus eight?",
    "Which planet is closest to the sun?",
    "Suggest a good name for a dog.",
    "How many days are in a leap year?",
    "What color are bananas?",
    "Tell me a fun fact about octopuses.",
    "At what temperature does water boil in Fahrenheit?",
    "Who painted the Mona Lisa?",
    "What is the square root of sixty-four?",
    "Suggest a quick breakfast.",
    "What language is spoken in Mexico?",
    "How many players are on a soccer team?",
    "What is the largest desert in the world?",
    "Name a musical instrument with strings.",
    "What was my name again?",
)
INTENT_PHRASES: tuple[tuple[str, IntentKind], ...] = (
    ("Stop.", IntentKind.STOP),
    ("Never mind.", IntentKind.STOP),
    ("Be quiet.", IntentKind.STOP),
    ("Cancel.", IntentKind.STOP),
    ("Turn the volume up.", IntentKind.VOLUME_UP),
    ("Louder, please.", IntentKind.VOLUME_UP),
    ("Turn it down.", IntentKind.VOLUME_DOWN),
    ("Set the volume to fifty percent.", IntentKind.VOLUME_SET),
    ("Set volume to seven.", IntentKind.VOLUME_SET),
    ("What time is it?", IntentKind.TIME),
    ("What's the time?", IntentKind.TIME),
    ("What's the date today?", IntentKind.DATE),
    ("What day is it?", IntentKind.DATE),
    ("Set a timer for five minutes.", IntentKind.TIMER_SET),
    ("Set a timer for ninety seconds.", IntentKind.TIMER_SET),
    ("Set a ten minute timer.", IntentKind.TIMER_SET),
    ("Start a pasta timer for eight minutes.", IntentKind.TIMER_SET),
    ("How much time is left?", IntentKind.TIMER_LEFT),
    ("How long is left on the timer?", IntentKind.TIMER_LEFT),
    ("Cancel the timer.", IntentKind.TIMER_CANCEL),
    ("Repeat that.", IntentKind.REPEAT),
    ("Say that again.", IntentKind.REPEAT),
)
NOT_INTENTS = (
    "What time does the sun set?",
    "How do I stop a nosebleed?",
    "How long is a marathon?",
    "What is the date of Christmas?",
)
TOOL_REQUESTS = (
    "Could you start a countdown of three minutes for the eggs?",
    "I need a reminder in twenty minutes to check the oven.",
    "Make it a bit louder, would you?",
    "What is the time in my kitchen?",
    "Please put on a countdown of ninety seconds.",
)
"""Requests the grammar does not take, so the model's tool call carries them out."""
SILENCE = 0.4
"""Seconds of silence around a spoken question, as a microphone would have."""


@dataclass(frozen=True)
class Question:
    q: str
    accept: tuple[str, ...]


def load_questions(path: Path = QA_FILE) -> list[Question]:
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return [Question(str(e["q"]), tuple(str(a).lower() for a in e["accept"])) for e in raw["qa"]]


def answer_words(text: str) -> str:
    """Lower case, numbers as digits, words between single spaces (with one at each end, for matching)."""
    digits = alpha2digit(text.lower().replace("-", " "), "en", threshold=0)
    return " " + " ".join(re.sub(r"[^a-z0-9]+", " ", digits).split()) + " "


def is_right(answer: str, question: Question) -> bool:
    words = answer_words(answer)
    return any(f" {' '.join(a.split())} " in words for a in question.accept)


async def _ask(llm: LLM, question: str) -> tuple[str, float]:
    ctx = _base()
    ctx.add_message(Role.USER, question)
    return await _reply(llm, ctx)


async def _reply(llm: LLM, ctx: ChatContext) -> tuple[str, float]:
    """The reply's words and its time to the first token."""
    stream = llm.chat(ctx)
    text = "".join([chunk.delta async for chunk in stream])
    await stream.aclose()
    return text, stream.metrics.ttft if stream.metrics is not None else -1.0


@contextlib.asynccontextmanager
async def _scratch_intents() -> AsyncIterator[IntentHandler]:
    """The intents on a scratch timer store and a software mixer: nothing on the device changes."""

    async def ring(timer: Any, late_by: float) -> None:
        return None

    with tempfile.TemporaryDirectory(prefix="appliance-bench-") as tmp:
        store = TimerStore(Path(tmp) / "timers.db")
        clock = TimerClock(store, ring)
        await clock.start()
        try:
            yield IntentHandler(clock, Mixer(Path(tmp), pactl="/nonexistent", amixer="/nonexistent"))
        finally:
            await clock.close()
            store.close()


def _spoken(voice: TTS, text: str) -> AudioFrame:
    audio = resample(voice.synthesize_sync(text), SAMPLE_RATE)  # type: ignore[attr-defined]
    pad = np.zeros(int(SILENCE * SAMPLE_RATE), np.int16)
    return AudioFrame(np.concatenate([pad, audio.data, pad]), SAMPLE_RATE)


async def _transcribe(stt: STT, audio: AudioFrame) -> str:
    event = await stt.recognize(audio)
    return event.alternatives[0].text if event.alternatives else ""


async def _questions(llm: LLM, stt: STT, voice: TTS, questions: list[Question]) -> dict[str, Any]:
    await llm.warm_up(_base())
    text_right, speech_right, ttfts, misses = 0, 0, [], []
    for question in questions:
        answer, ttft = await _ask(llm, question.q)
        ttfts.append(ttft)
        text_ok = is_right(answer, question)
        text_right += text_ok
        heard = await _transcribe(stt, _spoken(voice, question.q))
        spoken_answer, _ = await _ask(llm, heard)
        speech_ok = is_right(spoken_answer, question)
        speech_right += speech_ok
        if not (text_ok and speech_ok):
            misses.append({"q": question.q, "heard": heard, "text": answer, "spoken": spoken_answer})
    n = len(questions)
    return {
        "questions": n,
        "text_accuracy": round(text_right / n, 3),
        "speech_accuracy": round(speech_right / n, 3),
        "ttft_p50": percentile(ttfts, 0.5),
        "misses": misses,
    }


def _base() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(Role.SYSTEM, DEFAULT_INSTRUCTIONS)
    return ctx


async def _conversation(llm: LLM, tts: TTS, vad: Any, stt: STT, turns: tuple[str, ...]) -> dict[str, Any]:
    """The turns through a real session (its history budget and cached prompt), speaker as fast as it goes."""
    options = SessionOptions(require_wake_word=False, earcons=False)
    session = AgentSession(vad=vad, stt=stt, llm=llm, tts=tts, wake=None, options=options)
    output = RecordingOutput(tts.sample_rate, realtime=False)
    spoke: list[float] = []
    metrics: list[ev.TurnMetrics] = []
    session.on(ev.EventType.METRICS_COLLECTED, lambda e: metrics.append(e.metrics))
    session.on(
        ev.EventType.AGENT_STATE_CHANGED,
        lambda e: spoke.append(time.perf_counter()) if e.new_state is AgentState.SPEAKING else None,
    )
    quiet = AudioFrame(np.zeros(int(600 * SAMPLE_RATE), np.int16), SAMPLE_RATE)
    first_audio, replies = [], []
    try:
        await session.start(Agent(), audio_input=FileInput(quiet, realtime=True), audio_output=output)
        for turn in turns:
            asked, before = time.perf_counter(), len(spoke)
            handle = session.generate_reply(user_input=turn)
            await asyncio.wait_for(handle.wait_for_playout(), 120)
            first_audio.append(spoke[before] - asked if len(spoke) > before else float("nan"))
            replies.append(handle.heard_text or "")
    finally:
        await session.aclose()
        await output.aclose()
    ttft = [m.llm_ttft if m.llm_ttft is not None else float("nan") for m in metrics]
    prompt = [m.llm_prompt_tokens for m in metrics]
    cached = [m.llm_cached_tokens for m in metrics]
    seen: set[str] = set()
    repeats = 0
    for reply in replies:
        key = answer_words(reply)
        repeats += key in seen and key.strip() != ""
        seen.add(key)
    early = _mean(ttft[1:4])
    late = _mean(ttft[-3:])
    return {
        "turns": len(turns),
        "repeated_replies": repeats,
        "ttft_per_turn": [round(t, 3) for t in ttft],
        "reply_to_first_audio_per_turn": [round(t, 3) for t in first_audio],
        "prompt_tokens_per_turn": prompt,
        "cached_tokens_per_turn": cached,
        "ttft_turn2_to_4_mean": early,
        "ttft_last3_mean": late,
        "ttft_late_vs_early": round(late / early, 3) if early > 0 else None,
        "remembers_name": "sam" in answer_words(replies[-1]),
        "replies": replies,
    }


def _mean(values: list[float]) -> float:
    good = [v for v in values if v == v]
    return round(sum(good) / len(good), 4) if good else float("nan")


async def _intents(stt: STT, voice: TTS, phrases: tuple[tuple[str, IntentKind], ...]) -> dict[str, Any]:
    recognized, wrong, times = 0, [], []
    async with _scratch_intents() as handler:
        for phrase, kind in phrases:
            heard = await _transcribe(stt, _spoken(voice, phrase))
            decided = time.perf_counter()
            intent = match(heard)
            if intent is not None:
                await handler.handle(intent, last_reply="The capital of France is Paris.")
            times.append(time.perf_counter() - decided)
            if intent is not None and intent.kind is kind:
                recognized += 1
            else:
                wrong.append({"said": phrase, "heard": heard, "got": intent.kind.value if intent else None})
    false_hits = [p for p in NOT_INTENTS if match(await _transcribe(stt, _spoken(voice, p))) is not None]
    return {
        "phrases": len(phrases),
        "recognition_rate": round(recognized / len(phrases), 3),
        "decision_to_answer_ms_p50": round(percentile(times, 0.5) * 1000, 2),
        "decision_to_answer_ms_max": round(percentile(times, 1.0) * 1000, 2),
        "questions_taken_for_intents": false_hits,
        "misses": wrong,
    }


async def _tools(llm: LLM, tools_of: Any, requests: tuple[str, ...]) -> dict[str, Any]:
    """What a tool call costs a turn on the local model: the call (the request to a parsed call), the tool,
    and the reply in words after its answer."""
    from appliance.intents.tools import ABOUT

    calls, runs, answers, right = [], [], [], 0
    for request in requests:
        ctx = _base()
        ctx.add_message(Role.USER, request)
        offered = [t for t in tools_of if ABOUT[t.name].search(request)]
        asked = time.perf_counter()
        stream = llm.chat(ctx, tools=[t.spec for t in offered], tool_choice="required")
        found = [c for chunk in [c async for c in stream] for c in chunk.tool_calls]
        await stream.aclose()
        calls.append(time.perf_counter() - asked)
        if not found:
            continue
        call = found[0]
        tool = next(t for t in offered if t.name == call.name)
        started = time.perf_counter()
        output = await tool.fn(**tool.check(json.loads(call.arguments)))
        runs.append(time.perf_counter() - started)
        right += bool(output)
        ctx.add_function_call(call.call_id, call.name, call.arguments)
        ctx.add_function_output(call.call_id, call.name, str(output))
        _, ttft = await _reply(llm, ctx)
        answers.append(ttft)
    return {
        "requests": len(requests),
        "carried_out": right,
        "call_seconds_p50": percentile(calls, 0.5),
        "tool_seconds_p50": percentile(runs, 0.5) if runs else None,
        "reply_after_call_ttft_p50": percentile(answers, 0.5) if answers else None,
        "overhead_p50": round(percentile(calls, 0.5) + (percentile(answers, 0.5) if answers else 0.0), 3),
    }


async def _scratch_tools(llm: LLM, requests: tuple[str, ...]) -> dict[str, Any]:
    from appliance.intents.tools import intent_tools

    async with _scratch_intents() as handler:
        return await _tools(llm, intent_tools(handler), requests)


def run_answers_bench(
    models: Models, choice: EngineChoice | None = None, *, limit: int | None = None
) -> dict[str, Any]:
    """The whole answers bench on the configured models (the default set unless ``choice`` says otherwise);
    ``limit``: only the first questions, turns and phrases (a quick look, not the figures)."""
    choice = choice or EngineChoice()
    llm, stt, vad = models.llm(choice), models.stt(choice), models.vad(choice)
    tts = models.tts(choice)
    # the questions' voice: the same words give the same audio every run
    voice = models.tts(EngineChoice(piper=PiperSettings(noise_scale=0.0, noise_w=0.0)))

    async def go() -> dict[str, Any]:
        return {
            "model": choice.llm,
            "questions": await _questions(llm, stt, voice, load_questions()[:limit]),
            "conversation": await _conversation(llm, tts, vad, stt, CONVERSATION[:limit]),
            "intents": await _intents(stt, voice, INTENT_PHRASES[:limit]),
            "tools": await _scratch_tools(llm, TOOL_REQUESTS[:limit]),
        }

    try:
        return asyncio.run(go())
    finally:
        for engine in (llm, stt, vad, tts, voice):
            close = getattr(engine, "close", None)
            if close is not None:
                close()
