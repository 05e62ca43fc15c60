"""Many turns in a row through the private PulseAudio server: does memory level off, does latency hold?

The daemon keeps its conversation (as the service does) in a state directory of its own; each turn is the
SYNTHETIC wake phrase and one of the real recorded questions (pocketsphinx-testdata) or a SYNTHETIC one, and
the figures are the daemon's resident memory after each turn and the turn's own end of speech -> first
audio. Memory is read after the reply, when the turn's buffers have been let go.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.resample import resample
from appliance.audio.wav import read_audio
from appliance.bench.live import QUESTIONS, ROOM_NOISE
from appliance.rig.daemon_process import DaemonProcess
from appliance.rig.sound_server import MicFeeder, VirtualSoundServer
from appliance.tts.base import TTS, synthesize_all
from appliance.utils.stats import percentile

logger = logging.getLogger(__name__)

SPOKEN = (
    "What is the capital of France?",
    "How many days are in a week?",
    "What do bees make?",
    "What is the opposite of hot?",
    "Name a fruit that is yellow.",
    "Which planet do we live on?",
)
"""SYNTHETIC questions played between the recorded ones, so the conversation is not one question over and over."""
BLOCK = 50
"""Turns per row of the report."""
TURN_TIMEOUT = 90.0


def run_soak_bench(corpus: Path, tts: TTS, turns: int) -> dict[str, Any]:
    wake = resample(asyncio.run(synthesize_all(tts, "Hey, Jarvis.")), SAMPLE_RATE)
    silence = np.zeros(int(0.4 * SAMPLE_RATE), np.int16)
    asked = [read_audio(corpus / name) for name in QUESTIONS if (corpus / name).is_file()]
    asked += [resample(asyncio.run(synthesize_all(tts, text)), SAMPLE_RATE) for text in SPOKEN]
    clips = [AudioFrame(np.concatenate([silence, wake.data, silence, q.data, silence]), SAMPLE_RATE) for q in asked]
    rss: list[float] = []
    latency: list[float | None] = []
    missed = 0
    with tempfile.TemporaryDirectory(prefix="appliance-soak-") as tmp:
        root = Path(tmp)
        server = VirtualSoundServer(root / "pulse")
        server.start()
        mic = MicFeeder(server.fifo, noise_level=ROOM_NOISE).start()
        config = root / "config.toml"
        config.write_text(f'[service]\nstate_dir = "{root / "state"}"\n\n[agent]\nkeep_history = true\n')
        daemon = DaemonProcess(["--follow-up", "1.0", "--listening-timeout", "4"], server.env, root / "d.log", config)
        began = time.monotonic()
        try:
            daemon.wait_ready()
            start_rss = daemon.rss_mb()
            for turn in range(turns):
                daemon.wait_state("waiting_for_wake", timeout=TURN_TIMEOUT)
                since = time.time()
                mic.play(clips[turn % len(clips)]).done.wait(60)
                try:
                    metrics = daemon.wait_event("metrics_collected", since, timeout=TURN_TIMEOUT)["metrics"]
                    latency.append(metrics.get("eos_to_first_audio"))
                except TimeoutError:
                    missed += 1
                    latency.append(None)
                daemon.wait_state("waiting_for_wake", timeout=TURN_TIMEOUT)
                rss.append(daemon.rss_mb())
                if (turn + 1) % BLOCK == 0:
                    logger.info("soak", extra={"turns": turn + 1, "rss_mb": round(rss[-1], 1)})
        finally:
            daemon.stop()
            mic.stop()
            server.stop()
    return _report(start_rss, rss, latency, missed, time.monotonic() - began)


def _report(
    start_rss: float, rss: list[float], latency: list[float | None], missed: int, seconds: float
) -> dict[str, Any]:
    rows = []
    for lo in range(0, len(rss), BLOCK):
        part = [x for x in latency[lo : lo + BLOCK] if x is not None]
        rows.append(
            {
                "turns": f"{lo + 1}-{min(lo + BLOCK, len(rss))}",
                "rss_mb_at_end": round(rss[min(lo + BLOCK, len(rss)) - 1], 1),
                "eos_to_first_audio_p50": percentile(part, 0.5),
                "eos_to_first_audio_p95": percentile(part, 0.95),
            }
        )
    third = rss[len(rss) * 2 // 3 :]
    slope = float(np.polyfit(np.arange(len(third)), third, 1)[0]) if len(third) >= 2 else None
    return {
        "turns": len(rss),
        "turns_missed": missed,
        "seconds": round(seconds, 1),
        "rss_mb_at_ready": round(start_rss, 1),
        "rss_mb_after_first_turn": round(rss[0], 1) if rss else None,
        "rss_mb_at_end": round(rss[-1], 1) if rss else None,
        "rss_mb_max": round(max(rss), 1) if rss else None,
        "rss_mb_per_100_turns_over_the_last_third": round(100 * slope, 2) if slope is not None else None,
        "blocks": rows,
    }
