"""``bench --providers``: what a cloud provider costs against the local engine, and what each way of failing
adds to the first output when the local engine has to stand in, measured on the loopback servers with the
real clients and the real local engines.

For each stage, the first useful output: the first token (LLM), the final transcript (STT), the first audio
(TTS). What a failure adds to the first output (and so to the first audio of the turn) is what the failed try
took before the local engine was asked (``failed_try``); ``first_output`` is the whole, the local engine's time
included. ``served_by`` says who gave the first output (the cloud, when the failure came after it). Each
run builds a fresh fallback adapter (a fresh circuit breaker), so every run pays the failure in full: what the
first turn after an outage costs, not the later ones, which skip the provider once its breaker is open.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from appliance.audio.frame import AudioFrame
from appliance.llm.base import LLM, ChatContext, Role
from appliance.providers.chains import fallback
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.server import LoopbackServer
from appliance.stt.base import STT
from appliance.tts.base import TTS
from appliance.utils.stats import percentile

QUESTION = "What is the capital of France?"
REPLY = "The capital of France is Paris."
KEY = "bench-key"
FAULTS = (
    Fault.STATUS_500,
    Fault.STATUS_429,
    Fault.STATUS_401,
    Fault.REFUSED,
    Fault.HANG_BEFORE_FIRST,
    Fault.MALFORMED,
    Fault.DISCONNECT,
)
"""The failures a fallback answers (after the first output the reply stays with its provider, by design)."""


@dataclass(frozen=True)
class Provider:
    stage: str
    name: str
    server: Callable[[], LoopbackServer]
    engine: Callable[[str], Any]
    """The real client, given the loopback server's URL."""


def _providers() -> list[Provider]:
    from appliance.providers.deepgram import DeepgramSTT
    from appliance.providers.elevenlabs import ElevenLabsTTS
    from appliance.providers.openai import OpenAILLM, OpenAISTT, OpenAITTS
    from appliance.rig.loopback.deepgram import DeepgramServer
    from appliance.rig.loopback.elevenlabs import ElevenLabsServer
    from appliance.rig.loopback.openai import OpenAIServer

    def openai() -> LoopbackServer:
        server = OpenAIServer(api_key=KEY)
        server.reply, server.transcript = REPLY, QUESTION
        return server

    def deepgram() -> LoopbackServer:
        server = DeepgramServer(api_key=KEY)
        server.utterances = [QUESTION]
        return server

    return [
        Provider("llm", "openai", openai, lambda url: OpenAILLM(base_url=f"{url}/v1", api_key=KEY, model="loopback-1")),
        Provider("stt", "openai", openai, lambda url: OpenAISTT(base_url=f"{url}/v1", api_key=KEY)),
        Provider("stt", "deepgram", deepgram, lambda url: DeepgramSTT(api_key=KEY, base_url=_ws(url))),
        Provider("tts", "openai", openai, lambda url: OpenAITTS(base_url=f"{url}/v1", api_key=KEY)),
        Provider(
            "tts",
            "elevenlabs",
            lambda: ElevenLabsServer(api_key=KEY),
            lambda url: ElevenLabsTTS(api_key=KEY, voice_id="bench", base_url=url),
        ),
    ]


def _ws(url: str) -> str:
    return "ws" + url.removeprefix("http") + "/v1/listen"


async def first_output(stage: str, engine: Any, audio: AudioFrame) -> float:
    """Seconds to the stage's first useful output."""
    start = time.perf_counter()
    if stage == "llm":
        ctx = ChatContext()
        ctx.add_message(Role.USER, QUESTION)
        stream = engine.chat(ctx)
        try:
            async for chunk in stream:
                if chunk.delta:
                    break
        finally:
            await stream.aclose()
    elif stage == "stt":
        await engine.recognize(audio)
    else:
        stream = engine.synthesize(REPLY)
        try:
            await anext(stream)
        finally:
            await stream.aclose()
    return time.perf_counter() - start


def _figures(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 0.5), "max": percentile(values, 1.0)}


async def bench_providers(local: dict[str, LLM | STT | TTS], audio: AudioFrame, runs: int) -> dict[str, Any]:
    """``local``: the real local engine of each stage; ``audio``: an utterance for the recognisers."""
    report: dict[str, Any] = {}
    local_seconds: dict[str, list[float]] = {}
    for stage, engine in local.items():
        await first_output(stage, engine, audio)  # warm: the first request pays for loading caches
        local_seconds[stage] = [await first_output(stage, engine, audio) for _ in range(runs)]
        report.setdefault(stage, {})["local"] = _figures(local_seconds[stage])
    for provider in _providers():
        report[provider.stage][provider.name] = await _bench_provider(provider, local, local_seconds, audio, runs)
    return report


async def _bench_provider(
    provider: Provider,
    local: dict[str, Any],
    local_seconds: dict[str, list[float]],
    audio: AudioFrame,
    runs: int,
) -> dict[str, Any]:
    server = provider.server()
    await server.start()
    cloud = provider.engine(server.url)
    stage, baseline = provider.stage, percentile(local_seconds[provider.stage], 0.5)
    try:
        await first_output(stage, cloud, audio)  # the connection is open, as the daemon's warm-up leaves it
        healthy = [await first_output(stage, cloud, audio) for _ in range(runs)]
        out: dict[str, Any] = {
            "healthy": _figures(healthy),
            "against_local_p50": round(percentile(healthy, 0.5) - baseline, 4),
        }
        by_fault: dict[str, Any] = {}
        for fault in FAULTS:
            cost, firsts, served = [], [], Counter[str]()
            for _ in range(runs):
                await server.set_fault(fault)
                adapter = fallback(stage, [cloud, local[stage]], [provider.name, "local"])
                try:
                    firsts.append(await first_output(stage, adapter, audio))
                finally:
                    await adapter.pool.aclose()  # the probes; the engines stay open for the next run
                cost.append(sum(adapter.pool.fallback_seconds))
                served.update(_served_by(adapter))
                await server.set_fault(Fault.NONE)
            by_fault[fault.value] = {
                "failed_try_p50": percentile(cost, 0.5),
                "failed_try_max": percentile(cost, 1.0),
                "first_output_p50": percentile(firsts, 0.5),
                "served_by": dict(served),
            }
        out["fallback"] = by_fault
        return out
    finally:
        await cloud.aclose()
        await server.stop()


def _served_by(adapter: Any) -> Counter[str]:
    return Counter(p for (p, outcome), n in adapter.pool.outcomes.items() for _ in range(n) if outcome == "ok")
