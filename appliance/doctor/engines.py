"""Each engine the config names: loaded, and run on a tiny input, with both times."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import appliance
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.wav import read_audio
from appliance.config import Config
from appliance.doctor.models import needed_models
from appliance.doctor.result import CheckResult, Status, timed
from appliance.engines import EngineChoice, Models
from appliance.errors import APITimeoutError, ApplianceError
from appliance.llm.base import LLM, ChatContext, Role
from appliance.stt.base import STT
from appliance.tts.base import TTS, synthesize_all
from appliance.vad.base import VAD, VADEventType
from appliance.wake.base import WakeDetector

CLIP = Path(appliance.__file__).parent / "data" / "demo_hey_jarvis.wav"
"""Synthetic speech shipped with the package: "Hey Jarvis. What is the capital of France?"."""
LLM_TOKENS = 4
STAGES = ("vad", "wake", "stt", "llm", "tts")

Run = Callable[[Any], tuple[str, bool]]
"""Runs a loaded engine on its tiny input: what came out, and whether that looks right."""


def load_factor() -> float:
    """How many times over the machine's cores are asked for (the 1-minute load average per core), at least 1:
    a check's time bounds are stretched by it, since a starved engine is slow, not broken."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1.0
    return max(1.0, load / (os.cpu_count() or 1))


def stretched(choice: EngineChoice, factor: float) -> EngineChoice:
    """``choice`` with the LLM's time bounds ``factor`` times longer (within what its settings allow)."""
    llama = choice.llama
    return dataclasses.replace(
        choice,
        llama=dataclasses.replace(
            llama,
            first_token_timeout=min(300.0, llama.first_token_timeout * factor),
            token_timeout=min(300.0, llama.token_timeout * factor),
        ),
    )


def busy_note() -> str:
    """What a timeout happened under, when the machine was short of CPU ('' when it was not)."""
    factor = load_factor()
    if factor <= 1.0:
        return ""
    return f"; the machine was busy (load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"


def engine_checks(config: Config, models: Models, broken: set[str], cli: str) -> list[CheckResult]:
    """``broken``: models already reported missing or corrupted, whose engines are skipped.
    ``cli``: how to call appliance-cli here, for the fixes."""
    choice = config.engines()
    choice = stretched(choice, load_factor())
    needed = needed_models(config)
    by_role = {stage: {n for n, (_, role) in needed.items() if role.startswith(stage)} for stage in STAGES}
    stages: list[tuple[str, Callable[[], Any], Run]] = [
        ("vad", lambda: models.vad(choice), _run_vad),
        ("wake", lambda: models.wake(choice), _run_wake),
        ("stt", lambda: models.stt(choice), _run_stt),
        ("llm", lambda: models.llm(choice), _run_llm),
        ("tts", lambda: models.tts(choice), _run_tts),
    ]
    results = []
    for stage, load, run in stages:
        name = f"engine.{stage}"
        if stage == "wake" and not config.agent.require_wake_word:
            results.append(CheckResult(name, Status.SKIP, "no wake word (agent.require_wake_word = false)"))
        elif by_role[stage] & broken:
            missing = ", ".join(sorted(by_role[stage] & broken))
            results.append(CheckResult(name, Status.SKIP, f"not loaded: {missing} is missing or corrupted (above)"))
        else:
            results.append(timed(name, functools.partial(_load_and_run, name, load, run, cli)))
    return results


def _load_and_run(name: str, load: Callable[[], Any], run: Run, cli: str) -> CheckResult:
    start = time.perf_counter()
    try:
        engine = load()
    except ApplianceError as exc:
        return CheckResult(name, Status.FAIL, f"does not load: {exc}", f"{cli} models verify")
    loaded = time.perf_counter()
    try:
        output, works = run(engine)
    except APITimeoutError as exc:
        busy = busy_note()
        if busy:  # starved of CPU, not broken: the same check on an idle machine says which
            return CheckResult(
                name,
                Status.WARN,
                f"loaded, then timed out on a tiny input: {exc}{busy}",
                f"{cli} doctor when the machine is idle",
            )
        return CheckResult(name, Status.FAIL, f"loaded, then failed on a tiny input: {exc}", f"{cli} -vv doctor")
    except ApplianceError as exc:
        return CheckResult(name, Status.FAIL, f"loaded, then failed on a tiny input: {exc}", f"{cli} -vv doctor")
    finally:
        engine.close()
    ran = time.perf_counter()
    detail = f"loaded in {loaded - start:.2f} s, {output} in {ran - loaded:.2f} s"
    if not works:
        return CheckResult(name, Status.WARN, detail, f"{cli} models fetch --force, or try another model")
    return CheckResult(name, Status.OK, detail)


def _silence(seconds: float) -> AudioFrame:
    return AudioFrame(np.zeros(int(seconds * SAMPLE_RATE), np.int16), SAMPLE_RATE)


def _run_vad(vad: VAD) -> tuple[str, bool]:
    async def probabilities() -> list[float]:
        stream = vad.stream()
        try:
            stream.push_frame(_silence(0.5))
            stream.end_input()
            return [e.probability async for e in stream if e.type is VADEventType.INFERENCE_DONE]
        finally:
            await stream.aclose()

    speech = max(asyncio.run(probabilities()), default=0.0)
    return f"0.5 s of silence (speech probability {speech:.2f})", speech < 0.5


def _run_wake(wake: WakeDetector) -> tuple[str, bool]:
    async def detections() -> int:
        stream = wake.stream()
        try:
            stream.push_frame(_silence(2.0))
            stream.end_input()
            return len([d async for d in stream])
        finally:
            await stream.aclose()

    fired = asyncio.run(detections())
    return f"2 s of silence ({fired} detections)", fired == 0


def _run_stt(stt: STT) -> tuple[str, bool]:
    clip = read_audio(CLIP)
    event = asyncio.run(stt.recognize(clip))
    text = event.alternatives[0].text if event.alternatives else ""
    return f"{clip.seconds:.1f} s of speech heard as {text!r}", bool(text.strip())


def _run_llm(llm: LLM) -> tuple[str, bool]:
    async def generate() -> tuple[int, float]:
        ctx = ChatContext()
        ctx.add_message(Role.USER, "Say hello.")
        start = time.perf_counter()
        first = 0.0
        stream = llm.chat(ctx)
        tokens = 0
        try:
            async for _chunk in stream:
                tokens += 1
                first = first or time.perf_counter() - start
                if tokens >= LLM_TOKENS:
                    break
        finally:
            await stream.aclose()
        return tokens, first

    tokens, first = asyncio.run(generate())
    return f"{tokens} tokens (first after {first:.2f} s)", tokens > 0


def _run_tts(tts: TTS) -> tuple[str, bool]:
    audio = asyncio.run(synthesize_all(tts, "Hello."))
    return f"'Hello.' spoken as {audio.seconds:.2f} s of audio", audio.seconds > 0.1
