"""The daemon measured from outside: a private PulseAudio server, a virtual microphone fed with real
clips in real time, and the speaker's monitor recorded. Every figure here is taken at the speaker.
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
from appliance.errors import ConfigError
from appliance.rig.daemon_process import DaemonProcess, voiced_span
from appliance.rig.sound_server import MicFeeder, MonitorRecorder, VirtualSoundServer
from appliance.tts.base import TTS, synthesize_all
from appliance.utils.stats import percentile

logger = logging.getLogger(__name__)

QUESTIONS = ("goforward.raw", "something.raw", "cards/001.wav", "cards/002.wav", "cards/003.wav", "cards/005.wav")
"""Real recorded speech (pocketsphinx-testdata) played as the user's questions."""
LONG_REQUESTS = (
    "Tell me a long story about a dragon who lives in a castle.",
    "Tell me a long story about a pirate who finds an old map.",
    "Tell me a long story about a robot who learns to paint.",
    "Tell me a long story about a fox in a winter forest.",
    "Tell me a long story about a girl who builds a boat.",
)
"""A new story each run: asked the same one again in the same conversation, a model says it already told it."""
SLOW_SPEAKER = (
    ("What is the weather like in", "Paris today?"),
    ("Tell me a short joke about", "a cat and a dog."),
    ("What is the capital city of", "Australia?"),
    ("How many legs does a spider have and", "how many does an ant have?"),
)
"""Requests spoken with a pause in the middle, after a word that cannot end them (none asks for a device tool,
so each is answered as fast as a question)."""
SLOW_PAUSE = 0.8
"""Seconds of the pause: longer than the fixed 0.5 s rule, so only a turn detector keeps the request whole."""
ROOM_NOISE = 30.0
"""Room noise between clips (int16 standard deviation, about -60 dBFS): a quiet room, not digital silence."""
DAEMON_ARGS = ["--no-history", "--follow-up", "1.0", "--listening-timeout", "4"]


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.int16)


class _Rig:
    def __init__(self, root: Path) -> None:
        self.server = VirtualSoundServer(root)
        self.server.start()
        self.mic = MicFeeder(self.server.fifo, noise_level=ROOM_NOISE).start()
        self.speaker = MonitorRecorder(self.server.env)
        self.daemon = DaemonProcess(DAEMON_ARGS, self.server.env, root / "daemon.log")

    def close(self) -> None:
        self.daemon.stop()
        self.speaker.stop()
        self.mic.stop()
        self.server.stop()


def run_live_bench(corpus: Path, tts: TTS, *, runs: int, idle_seconds: float) -> dict[str, Any]:
    wake = resample(asyncio.run(synthesize_all(tts, "Hey, Jarvis.")), SAMPLE_RATE)  # SYNTHETIC wake phrase
    head = np.concatenate([_silence(0.3), wake.data, _silence(0.5)])
    stories = [resample(asyncio.run(synthesize_all(tts, text)), SAMPLE_RATE) for text in LONG_REQUESTS]
    questions = [read_audio(corpus / name) for name in QUESTIONS if (corpus / name).is_file()]
    if not questions:
        raise ConfigError(f"no question clips in {corpus}; install pocketsphinx-testdata")
    talk_over = read_audio(corpus / "goforward.raw")
    halves = [
        [resample(asyncio.run(synthesize_all(tts, text)), SAMPLE_RATE) for text in pair] for pair in SLOW_SPEAKER
    ]  # SYNTHETIC slow speakers
    paused = [
        (np.concatenate([a.data, _silence(SLOW_PAUSE), b.data]), pair[1])
        for (a, b), pair in zip(halves, SLOW_SPEAKER, strict=True)
    ]
    with tempfile.TemporaryDirectory(prefix="appliance-bench-") as tmp:
        rig = _Rig(Path(tmp))
        try:
            rig.daemon.wait_ready()
            report: dict[str, Any] = {"idle": _idle(rig, idle_seconds)}
            report["reply"] = _replies(rig, head, questions, runs)
            report["slow_speaker"] = _slow_speakers(rig, head, paused)
            report["interruption"] = _interruptions(rig, head, stories[: max(1, min(runs, 5))], talk_over)
            report["process"] = {"daemon_peak_rss_mb": round(rig.daemon.peak_rss_mb(), 1)}
        finally:
            rig.close()
    return report


def _idle(rig: _Rig, seconds: float) -> dict[str, float]:
    """CPU the daemon uses while it waits for the wake word in a quiet room."""
    rig.daemon.wait_state("waiting_for_wake")
    time.sleep(2.0)
    cpu0, t0 = rig.daemon.cpu_seconds(), time.monotonic()
    time.sleep(seconds)
    cpu1, t1 = rig.daemon.cpu_seconds(), time.monotonic()
    return {"cpu_percent_of_one_core": round(100 * (cpu1 - cpu0) / (t1 - t0), 2), "seconds": round(t1 - t0, 1)}


def _replies(rig: _Rig, head: np.ndarray, questions: list[AudioFrame], runs: int) -> dict[str, Any]:
    """End of the user's speech -> first reply audio at the speaker, over the real question clips."""
    at_speaker, in_process, speculative, missed = [], [], 0, 0
    preemptive, judged, began = 0, [], time.time()
    for i in range(max(runs, len(questions))):
        question = questions[i % len(questions)]
        rig.daemon.wait_state("waiting_for_wake", timeout=90)
        time.sleep(0.5)
        _, voice_end = voiced_span(question)
        clip = rig.mic.play(AudioFrame(np.concatenate([head, question.data, _silence(0.5)]), SAMPLE_RATE))
        clip.done.wait(60)
        assert clip.started is not None
        eos = clip.started + head.size / SAMPLE_RATE + voice_end
        try:
            metrics = rig.daemon.wait_event("metrics_collected", clip.started, timeout=60)["metrics"]
        except TimeoutError:
            missed += 1  # no wake, or nothing heard: counted, not timed
            continue
        time.sleep(0.3)
        first = rig.speaker.first_sound(eos + 0.05)
        if first is None:
            missed += 1
            continue
        at_speaker.append(first - eos)
        if metrics.get("eos_to_first_audio") is not None:
            in_process.append(metrics["eos_to_first_audio"])
        speculative += bool(metrics.get("stt_speculative"))
        preemptive += bool(metrics.get("preemptive"))
        if metrics.get("turn_detector_latency") is not None:
            judged.append(metrics["turn_detector_latency"])
    discarded = rig.daemon.find("preemptive_discarded", began)
    return {
        "speech_end_to_first_audio_at_speaker_p50": percentile(at_speaker, 0.5),
        "speech_end_to_first_audio_at_speaker_p95": percentile(at_speaker, 0.95),
        "speech_end_to_first_audio_at_speaker_max": percentile(at_speaker, 1.0),
        "in_process_estimate_p50": percentile(in_process, 0.5),
        "turns_timed": len(at_speaker),
        "turns_missed": missed,
        "speculative_transcripts_kept": speculative,
        "replies_made_ahead_used": preemptive,
        "replies_made_ahead_discarded": len(discarded),
        "discarded_cpu_seconds": round(sum(e["cpu_seconds"] for e in discarded), 3),
        "turn_detector_latency_p50": percentile(judged, 0.5),
        "clips": list(QUESTIONS),
    }


def _slow_speakers(rig: _Rig, head: np.ndarray, requests: list[tuple[np.ndarray, str]]) -> dict[str, Any]:
    """Requests with a pause in the middle: how many were cut (the first turn lacks the second half's last word)."""
    from appliance.bench import normalize_words

    cut, missed = 0, 0
    for request, second_half in requests:
        rig.daemon.wait_state("waiting_for_wake", timeout=90)
        time.sleep(0.5)
        since = time.time()
        clip = rig.mic.play(AudioFrame(np.concatenate([head, request, _silence(0.5)]), SAMPLE_RATE))
        clip.done.wait(60)
        try:
            first = rig.daemon.wait_item("user", since, timeout=60)
            rig.daemon.wait_event("metrics_collected", since, timeout=60)
        except TimeoutError:
            missed += 1
            continue
        last_word = normalize_words(second_half).split()[-1]
        cut += last_word not in normalize_words(first["content"]).split()
    return {"requests": len(requests), "cut": cut, "missed": missed, "pause_seconds": SLOW_PAUSE}


def _interruptions(rig: _Rig, head: np.ndarray, stories: list[AudioFrame], talk_over: AudioFrame) -> dict[str, Any]:
    """Talking over a long reply: the interruption decision -> silence at the speaker."""
    to_silence, talk_to_silence, missed = [], [], 0
    voice_start, _ = voiced_span(talk_over)
    for story in stories:
        rig.daemon.wait_state("waiting_for_wake", timeout=90)
        time.sleep(0.5)
        since = time.time()
        rig.mic.play(AudioFrame(np.concatenate([head, story.data, _silence(0.5)]), SAMPLE_RATE))
        try:
            rig.daemon.wait_event("agent_state_changed", since, timeout=60, new_state="speaking")
        except TimeoutError:
            missed += 1
            continue
        time.sleep(1.5)
        talk = rig.mic.play(AudioFrame(np.concatenate([talk_over.data, _silence(0.5)]), SAMPLE_RATE))
        try:
            paused = rig.daemon.wait_event("speech_paused", since, timeout=15)
        except TimeoutError:
            missed += 1
            continue
        time.sleep(1.5)
        assert talk.started is not None
        # from the talk-over's first word, and held for a second: a paused story stays quiet until the talk-over
        # is answered, while a gap between two of its sentences (a slow box) must not count as the pause
        silent = rig.speaker.first_silence(talk.started + voice_start, hold=1.0)
        if silent is None:
            missed += 1
            continue
        to_silence.append(max(0.0, silent - paused["created_at"]))
        talk_to_silence.append(silent - (talk.started + voice_start))
        rig.daemon.wait_event("metrics_collected", talk.started, timeout=60)  # the talk-over gets its answer
    return {
        "decision_to_silence_p50": percentile(to_silence, 0.5),
        "decision_to_silence_max": percentile(to_silence, 1.0),
        "talk_over_start_to_silence_p50": percentile(talk_to_silence, 0.5),
        "runs": len(to_silence),
        "missed": missed,
    }
