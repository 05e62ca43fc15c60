"""Benchmarks of every stage and of the chain on real recordings (performance lives here, not in tests)."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import jiwer

from appliance.agent import DEFAULT_INSTRUCTIONS
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.wav import read_audio
from appliance.bench.wake_phrases import wake_margin
from appliance.engines import EngineChoice, Models
from appliance.errors import ConfigError
from appliance.llm.base import LLM, ChatContext, Role
from appliance.pipeline import converse, detect_wake
from appliance.stt.base import STT
from appliance.stt.whispercpp import WhisperSettings
from appliance.tts.base import TTS
from appliance.utils.stats import percentile
from appliance.vad.base import VAD
from appliance.wake.base import WakeDetector

DEFAULT_CORPUS = Path("/usr/share/pocketsphinx/test/data")
DEMO_CLIP = Path(__file__).parent.parent / "data" / "demo_hey_jarvis.wav"
LLM_PROMPTS = (
    "What is the capital of France?",
    "How many days are in a week?",
    "Give me a tip for sleeping better.",
    "What is two plus two?",
    "Name a primary color.",
)
TTS_TEXTS = (
    "Sure, I can help with that.",
    "The capital of France is Paris.",
    "It is sunny today, with a light breeze from the west.",
)


def librivox_clips(corpus: Path) -> list[tuple[Path, str]]:
    """The LibriVox clips and their reference transcripts."""
    folder = corpus / "librivox"
    listing = folder / "transcription"
    if not listing.is_file():
        raise ConfigError(f"{listing} not found; install the Debian package pocketsphinx-testdata or pass --corpus")
    clips = []
    for line in listing.read_text(encoding="utf-8").splitlines():
        m = re.match(r"<s> (.*) </s> \((.*)\)", line.strip())
        if m:
            clips.append((folder / f"{m.group(2)}.wav", m.group(1)))
    return clips


def normalize_words(text: str) -> str:
    """Lower case, no punctuation, the few spellings the references write out."""
    text = text.lower().replace("mr.", "mister").replace("mrs.", "missus").replace("-", " ")
    return " ".join(re.sub(r"[^a-z' ]", " ", text).split())


def word_error_rate(refs: list[str], hyps: list[str]) -> float:
    return float(jiwer.wer([normalize_words(r) for r in refs], [normalize_words(h) for h in hyps]))


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_provider_bench(models: Models, corpus: Path, runs: int = 5) -> dict[str, Any]:
    """The cloud providers on loopback servers against the local engines (``bench --providers``)."""
    from appliance.bench.providers import bench_providers
    from appliance.providers.chains import CLOUD_MODULES

    missing = [m for m in CLOUD_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(
            f"bench --providers needs the cloud extra ({missing[0]} is missing); run ./scripts/install --cloud"
        )
    path = corpus / "goforward.raw"
    if not path.is_file():
        raise ConfigError(f"{path} not found; install the Debian package pocketsphinx-testdata or pass --corpus")
    choice = EngineChoice()
    local: dict[str, LLM | STT | TTS] = {
        "llm": models.llm(choice),
        "stt": models.stt(choice),
        "tts": models.tts(choice),
    }
    try:
        return {"providers": asyncio.run(bench_providers(local, read_audio(path), runs))}
    finally:
        for engine in local.values():
            engine.close()


def run_bench(
    models: Models, corpus: Path, runs: int = 5, *, live: bool = True, idle_seconds: float = 60.0
) -> dict[str, Any]:
    clips = librivox_clips(corpus)
    audios = [(read_audio(p), ref) for p, ref in clips]
    total_audio = sum(a.seconds for a, _ in audios)
    choice = EngineChoice()
    wake, vad, stt = models.wake(choice), models.vad(choice), models.stt(choice)
    llm, tts = models.llm(choice), models.tts(choice)
    report: dict[str, Any] = {"load_seconds": {k: round(v, 3) for k, v in models.load_seconds.items()}}
    try:
        report["wake"] = _bench_wake(wake, audios, total_audio)
        report["wake"]["true_phrases"] = wake_margin(models, wake, choice.wake.threshold, choice.wake_words[0])
        report["vad"] = _bench_vad(vad, audios, total_audio)
        report["stt"] = asyncio.run(_bench_stt(stt, models, audios, corpus))
        report["llm"] = asyncio.run(_bench_llm(llm, runs))
        report["tts"] = asyncio.run(_bench_tts(tts, runs))
        report["chain"] = _bench_chain({"wake": wake, "vad": vad, "stt": stt, "llm": llm, "tts": tts}, runs)
        if live:
            from appliance.bench.live import run_live_bench

            report["live"] = run_live_bench(corpus, tts, runs=runs, idle_seconds=idle_seconds)
    finally:
        for engine in (wake, vad, stt, llm, tts):
            engine.close()
    report["process"] = {"peak_rss_mb": _peak_rss_mb()}
    return report


def _bench_wake(wake: WakeDetector, audios: list[tuple[AudioFrame, str]], total: float) -> dict[str, Any]:
    start = time.perf_counter()
    false_triggers = sum(len(asyncio.run(detect_wake(wake, a))) for a, _ in audios)
    return {
        "rtf": round((time.perf_counter() - start) / total, 4),
        "audio_seconds": round(total, 2),
        "false_triggers_on_speech": false_triggers,
    }


def _bench_vad(vad: VAD, audios: list[tuple[AudioFrame, str]], total: float) -> dict[str, float]:
    async def run(audio: AudioFrame) -> None:
        stream = vad.stream()
        try:
            for block in audio.split(int(0.1 * SAMPLE_RATE)):
                stream.push_frame(block)
            stream.end_input()
            async for _ in stream:
                pass
        finally:
            await stream.aclose()

    start = time.perf_counter()
    for a, _ in audios:
        asyncio.run(run(a))
    return {"rtf": round((time.perf_counter() - start) / total, 4)}


async def _bench_stt(
    stt: STT, models: Models, audios: list[tuple[AudioFrame, str]], corpus: Path
) -> dict[str, float | bool]:
    await stt.recognize(audios[0][0])  # warm-up: first call allocates whisper.cpp's buffers
    latencies, rtfs, hyps = [], [], []
    for a, _ in audios:
        ev = await stt.recognize(a)
        assert ev.metrics is not None
        latencies.append(ev.metrics.duration)
        rtfs.append(ev.metrics.rtf)
        hyps.append(ev.alternatives[0].text)
    short, untrimmed = [], []
    full_window = models.stt(EngineChoice(whisper=WhisperSettings(trim_audio_ctx=False)))
    try:
        for name in ("goforward.raw", "cards/001.wav", "cards/002.wav", "cards/003.wav", "cards/005.wav"):
            if (corpus / name).is_file():
                clip = read_audio(corpus / name)
                ev, full = await stt.recognize(clip), await full_window.recognize(clip)
                assert ev.metrics is not None and full.metrics is not None
                short.append((clip.seconds, ev.metrics.duration))
                untrimmed.append(full.metrics.duration)
    finally:
        full_window.close()
    return {
        "wer_librivox": round(word_error_rate([r for _, r in audios], hyps), 4),
        "latency_p50": percentile(latencies, 0.5),
        "latency_max": percentile(latencies, 1.0),
        "rtf_p50": percentile(rtfs, 0.5),
        "short_utterance_seconds_mean": round(statistics.mean(s for s, _ in short), 2) if short else float("nan"),
        "short_utterance_latency_p50": percentile([d for _, d in short], 0.5),
        "short_utterance_latency_full_window_p50": percentile(untrimmed, 0.5),
        "audio_ctx_trimmed": EngineChoice().whisper.trim_audio_ctx,
    }


async def _bench_llm(llm: LLM, runs: int) -> dict[str, float]:
    base = ChatContext()
    base.add_message(Role.SYSTEM, DEFAULT_INSTRUCTIONS)
    await llm.warm_up(base)
    ttfts, tps, durations = [], [], []
    for i in range(runs):
        ctx = base.copy()
        ctx.add_message(Role.USER, LLM_PROMPTS[i % len(LLM_PROMPTS)])
        stream = llm.chat(ctx)
        async for _ in stream:
            pass
        await stream.aclose()
        m = stream.metrics
        assert m is not None
        ttfts.append(m.ttft)
        tps.append(m.tokens_per_second)
        durations.append(m.duration)
    return {
        "ttft_p50": percentile(ttfts, 0.5),
        "ttft_max": percentile(ttfts, 1.0),
        "tokens_per_second_p50": percentile(tps, 0.5),
        "reply_duration_p50": percentile(durations, 0.5),
    }


async def _bench_tts(tts: TTS, runs: int) -> dict[str, float]:
    await _drain(tts.synthesize("Warm up."))
    ttfbs, rtfs = [], []
    for i in range(runs):
        stream = tts.synthesize(TTS_TEXTS[i % len(TTS_TEXTS)])
        await _drain(stream)
        assert stream.metrics is not None
        ttfbs.append(stream.metrics.ttfb)
        rtfs.append(stream.metrics.rtf)
    return {
        "ttfb_p50": percentile(ttfbs, 0.5),
        "ttfb_max": percentile(ttfbs, 1.0),
        "rtf_p50": percentile(rtfs, 0.5),
        "sample_rate": tts.sample_rate,
    }


async def _drain(stream: Any) -> None:
    async for _ in stream:
        pass
    await stream.aclose()


def _bench_chain(engines: dict[str, Any], runs: int) -> dict[str, Any]:
    """The agent on the bundled clip, played and recorded in real time inside the process."""
    if not DEMO_CLIP.is_file():
        raise ConfigError(f"bundled clip {DEMO_CLIP} is missing; reinstall the package")
    audio = read_audio(DEMO_CLIP)
    latencies, after_endpoint, stt_lat, ttft, ttfb, speculative = [], [], [], [], [], 0
    for _ in range(runs):
        result = asyncio.run(converse(audio=audio, realtime=True, **engines))
        m = result.metrics
        if m is None or m.eos_to_first_audio is None or result.endpoint_to_first_audio is None:
            raise ConfigError("the agent produced no reply on the bundled clip")
        latencies.append(m.eos_to_first_audio)
        after_endpoint.append(result.endpoint_to_first_audio)
        stt_lat.append(m.stt_latency if m.stt_latency is not None else float("nan"))
        ttft.append(m.llm_ttft if m.llm_ttft is not None else float("nan"))
        ttfb.append(m.tts_ttfb if m.tts_ttfb is not None else float("nan"))
        speculative += m.stt_speculative
    return {
        "speech_end_to_first_audio_p50": percentile(latencies, 0.5),
        "speech_end_to_first_audio_max": percentile(latencies, 1.0),
        "endpoint_to_first_audio_p50": percentile(after_endpoint, 0.5),
        "endpointing_delay": engines["vad"].settings.min_silence_duration,
        "speculative_transcripts_kept": f"{speculative}/{runs}",
        "stt_latency_p50": percentile(stt_lat, 0.5),
        "llm_ttft_p50": percentile(ttft, 0.5),
        "tts_ttfb_p50": percentile(ttfb, 0.5),
        "clip": DEMO_CLIP.name,
        "clip_seconds": round(audio.seconds, 2),
        "sample_rate": SAMPLE_RATE,
    }
