"""Open speakers: the private sound card with an acoustic path (the speaker heard at the microphone), and
the daemon run on it with echo cancellation on, and once off to show the rig really has an echo.

Two parts. The canceller on its own, in this process, on the real devices: a synthesized reply played
through the speaker while the microphone is read through the canceller (ERLE after convergence, the time
to converge, CPU per 10 ms block). Then the daemon from outside: replies nobody talks over (does it
interrupt itself, or wake on its own voice?), replies the user talks over (is it stopped, and how soon?),
and what it heard of the user over its own voice (WER, against the same speech with no echo).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance.audio.capture import MicrophoneInput
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import AudioInput
from appliance.audio.playback import SpeakerOutput
from appliance.audio.resample import resample
from appliance.audio.wav import read_audio, write_wav
from appliance.echo.base import BLOCK
from appliance.echo.input import EchoCancellingInput
from appliance.echo.offline import echo_figures
from appliance.echo.reference import PlayedAudio
from appliance.echo.webrtc import WebRTCEchoCanceller
from appliance.errors import ApplianceError, ConfigError
from appliance.rig.acoustic import AcousticPath, EchoSettings
from appliance.rig.daemon_process import DaemonProcess, voiced_span
from appliance.rig.sound_server import SPEAKER, MicFeeder, MonitorRecorder, VirtualSoundServer
from appliance.service.status import read_status
from appliance.tts.base import TTS, synthesize_all
from appliance.utils.stats import percentile

logger = logging.getLogger(__name__)

ECHO = EchoSettings(delay=0.08, gain_db=-6.0, reverb_db=-12.0)
"""The path measured: the speaker back at the microphone 6 dB down, 80 ms late, with a short room tail."""
REPLY_TEXT = (
    "The lighthouse keeper climbed the stairs every evening at dusk. He lit the lamp, wound the clock,"
    " and watched the ships pass far out at sea, counting their lights until the morning came."
)
"""What the speaker plays while the canceller is measured alone (synthesized)."""
ROOM_NOISE = 30.0
STORY_REQUESTS = (
    "Tell me a long story about a dragon who lives in a castle.",
    "Tell me a long story about a pirate who finds an old map.",
    "Tell me a long story about a robot who learns to paint.",
    "Tell me a long story about a fox in a winter forest.",
    "Tell me a long story about a girl who builds a boat.",
    "Tell me a long story about a baker who bakes for a king.",
    "Tell me a long story about an owl who cannot sleep at night.",
    "Tell me a long story about a boy who finds a tiny horse.",
    "Tell me a long story about a whale who sings to ships.",
    "Tell me a long story about a knight who is afraid of the dark.",
)
TALK_OVER = ("goforward.raw", "go forward ten meters")
"""The user's interruption (real recorded speech, pocketsphinx-testdata) and what it says."""
RAISED = 3.0
"""Gain on the recorded talk-over (+9.5 dB)."""
TALK_AFTER = 3.0
"""Seconds into the reply when the user starts talking over it: past its first clause, and the pause while the
next sentence is written (a talk-over there is not over a loud reply)."""
STORYTELLER = (
    "You are a helpful voice assistant running on a small device. Answer in one or two short, plain sentences"
    " that sound natural when spoken, except when asked for a story: tell a story of at least ten sentences."
)
"""The daemon's instructions on the rig: the talk-overs need a long, loud reply to talk over, and the default
instructions keep every reply to two sentences (about 3 s), which can end before a talk-over is decided."""
HISTORY = 1
"""Items of conversation the daemon's LLM is given: each request is answered on its own. The bench measures the
echo path, and a small model given five stories that the user cut starts telling stories in a sentence (in one
run, 17 of the 20 talk-overs found the story already over)."""
DAEMON_ARGS = ["--no-history", "--follow-up", "1.0", "--listening-timeout", "4", "--instructions", STORYTELLER]


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), np.int16)


@dataclass(frozen=True)
class EchoBenchOptions:
    replies: int = 10
    """Replies nobody talks over (self-interruptions are counted per this many)."""
    barge_ins: int = 20
    """Replies the user talks over."""
    baseline: bool = True
    """Also run a few replies with cancellation off: the rig must show the failure."""


def run_echo_bench(corpus: Path, tts: TTS, options: EchoBenchOptions) -> dict[str, Any]:
    talk_clip = corpus / TALK_OVER[0]
    if not talk_clip.is_file():
        raise ConfigError(f"no {TALK_OVER[0]} in {corpus}; install pocketsphinx-testdata")
    talk_over = read_audio(talk_clip)
    # the user speaks up over a loud reply: about 4 dB above its echo (the clip alone is 5 dB below it)
    talk_over = AudioFrame(np.clip(talk_over.data * RAISED, -32768, 32767).astype(np.int16), SAMPLE_RATE)
    wake = resample(asyncio.run(synthesize_all(tts, "Hey, Jarvis.")), SAMPLE_RATE)  # SYNTHETIC wake phrase
    head = np.concatenate([_silence(0.3), wake.data, _silence(0.5)])
    requests = [resample(asyncio.run(synthesize_all(tts, t)), SAMPLE_RATE) for t in STORY_REQUESTS]  # SYNTHETIC
    reply = asyncio.run(synthesize_all(tts, REPLY_TEXT))  # SYNTHETIC
    report: dict[str, Any] = {
        "path": {
            "delay": ECHO.delay,
            "gain_db": ECHO.gain_db,
            "reverb_db": ECHO.reverb_db,
            "echo_return_db": round(ECHO.energy_db, 1),
        }
    }
    with tempfile.TemporaryDirectory(prefix="appliance-echo-") as tmp:
        with echo_rig(Path(tmp) / "canceller") as rig:
            report["canceller"] = _canceller_in_subprocess(rig, reply, Path(tmp) / "reply.wav")
        with echo_rig(Path(tmp) / "on", daemon_config="on") as rig:
            assert rig.daemon is not None
            rig.daemon.wait_ready()
            report["clean_wer"] = _clean_wer(rig, head, requests[0], talk_over)
            report["on"] = {
                "replies": _replies(rig, head, requests, options.replies),
                "barge_in": _barge_ins(rig, head, requests, talk_over, options.barge_ins),
                "daemon_status": _status(rig).get("echo_cancellation"),
            }
        if options.baseline:
            with echo_rig(Path(tmp) / "off", daemon_config="off") as rig:
                assert rig.daemon is not None
                rig.daemon.wait_ready()
                report["off"] = {"replies": _replies(rig, head, requests, min(3, options.replies))}
    return report


@dataclass
class EchoRig:
    server: VirtualSoundServer
    path: AcousticPath
    mic: MicFeeder
    speaker: MonitorRecorder
    daemon: DaemonProcess | None


@contextmanager
def echo_rig(root: Path, *, daemon_config: str | None = None, echo: EchoSettings = ECHO) -> Iterator[EchoRig]:
    """The private sound card with the acoustic path; with ``daemon_config`` ("on"/"off"), the daemon on it."""
    root.mkdir(parents=True, exist_ok=True)
    server = VirtualSoundServer(root)
    server.start()
    path = AcousticPath(server.env, SPEAKER, echo)
    mic = MicFeeder(server.fifo, noise_level=ROOM_NOISE, echo=path).start()
    speaker = MonitorRecorder(server.env)
    daemon = None
    if daemon_config is not None:
        config = root / "appliance.toml"
        config.write_text(f'[audio]\necho_cancellation = "{daemon_config}"\n\n[agent]\nmax_history = {HISTORY}\n')
        daemon = DaemonProcess(DAEMON_ARGS, server.env, root / "daemon.log", config=config)
    try:
        yield EchoRig(server, path, mic, speaker, daemon)
    finally:
        if daemon is not None:
            daemon.stop()
        speaker.stop()
        mic.stop()
        path.stop()
        server.stop()


async def measure_canceller(reply: AudioFrame, *, lead: float = 1.0, tail: float = 0.5) -> dict[str, Any]:
    """The reply played through the speaker, the microphone read raw and through the canceller."""
    mic = MicrophoneInput()
    mic.open()
    speaker = SpeakerOutput(None, reply.sample_rate, rest_after=0)
    played = PlayedAudio()
    speaker.tap = played.tap
    await speaker.start()
    raw: list[np.ndarray] = []
    clean: list[np.ndarray] = []
    echo = EchoCancellingInput(_Tee(mic, raw), played, WebRTCEchoCanceller())

    async def pump() -> None:
        async for frame in echo:
            clean.append(frame.data)

    task = asyncio.create_task(pump(), name="echo-bench-pump")
    try:
        await asyncio.sleep(lead)
        start = sum(b.size for b in clean)
        await speaker.capture_frame(reply)
        speaker.flush()
        await asyncio.wait_for(speaker.wait_for_playout(), reply.seconds + 5)
        await asyncio.sleep(tail)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await speaker.aclose()
        await echo.aclose()
    n = min(sum(b.size for b in raw), sum(b.size for b in clean))
    before, after = np.concatenate(raw)[start:n], np.concatenate(clean)[start:n]
    cpu = 1000 * echo.cpu_seconds / max(echo.canceller.blocks, 1)
    return {**echo_figures(before, after), "cpu_per_block_ms": round(cpu, 3)}


def _canceller_in_subprocess(rig: EchoRig, reply: AudioFrame, wav: Path) -> dict[str, Any]:
    """``measure_canceller`` in a process of its own: its sound devices are the rig's (PortAudio reads the
    sound server's address once, when it starts)."""
    write_wav(wav, reply)
    run = subprocess.run(
        [sys.executable, "-m", "appliance.bench.echo", str(wav)],
        env=rig.server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if run.returncode != 0:
        raise ApplianceError(f"the echo canceller measurement failed: {run.stderr.strip()[-500:]}")
    result: dict[str, Any] = json.loads(run.stdout)
    return result


class _Tee(AudioInput):
    """The microphone, with every frame also kept raw."""

    realtime = True

    def __init__(self, mic: MicrophoneInput, keep: list[np.ndarray]) -> None:
        self.mic, self.keep = mic, keep
        self.captured_at: float | None = None

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[AudioFrame]:
        async for frame in self.mic:
            self.captured_at = self.mic.captured_at
            self.keep.append(frame.data)
            yield frame

    async def aclose(self) -> None:
        await self.mic.aclose()


def _ask(rig: EchoRig, head: np.ndarray, request: AudioFrame) -> float:
    assert rig.daemon is not None
    rig.daemon.wait_state("waiting_for_wake", timeout=120)
    time.sleep(0.5)
    since = time.time()
    rig.mic.play(AudioFrame(np.concatenate([head, request.data, _silence(0.3)]), SAMPLE_RATE))
    return since


def _replies(rig: EchoRig, head: np.ndarray, requests: list[AudioFrame], count: int) -> dict[str, Any]:
    """Replies nobody talks over: each must play to its end, with no pause for "the user" and no wake."""
    assert rig.daemon is not None
    self_interrupted, false_wakes, extra_turns, finished, missed, runaway = 0, 0, 0, 0, 0, False
    for i in range(count):
        try:
            since = _ask(rig, head, requests[i % len(requests)])
        except TimeoutError:  # still answering its own voice: the rest would only measure that again
            runaway = True
            break
        try:
            rig.daemon.wait_event("agent_state_changed", since, timeout=60, new_state="speaking")
            started = time.time()
            reply = rig.daemon.wait_item("assistant", since, timeout=180)
            rig.daemon.wait_state("waiting_for_wake", timeout=120)
        except TimeoutError:
            missed += 1
            continue
        ended = time.time()
        paused = rig.daemon.find("speech_paused", started)
        wakes = [e for e in rig.daemon.find("wake_word_detected", started) if e.get("created_at", 0) <= ended]
        users = [e for e in rig.daemon.find("conversation_item_added", started) if e["item"]["role"] == "user"]
        self_interrupted += bool(paused) or bool(reply.get("interrupted"))
        false_wakes += len(wakes)
        extra_turns += len(users)
        finished += not reply.get("interrupted")
    return {
        "replies": count - missed,
        "missed": missed,
        "self_interruptions": self_interrupted,
        "false_wakes": false_wakes,
        "turns_taken_from_own_voice": extra_turns,
        "played_to_the_end": finished,
        "still_answering_itself_at_the_end": runaway,
    }


def _barge_ins(
    rig: EchoRig, head: np.ndarray, requests: list[AudioFrame], talk_over: AudioFrame, count: int
) -> dict[str, Any]:
    """The user talks over a loud reply: is the reply stopped, how soon, and was the user heard right?"""
    assert rig.daemon is not None
    voice_start, _ = voiced_span(talk_over)
    stopped, ended_first, latencies, errors, heard = 0, 0, [], [], []
    missed: list[dict[str, Any]] = []
    for i in range(count):
        try:
            since = _ask(rig, head, requests[i % len(requests)])
            rig.daemon.wait_event("agent_state_changed", since, timeout=60, new_state="speaking")
        except TimeoutError:
            continue
        time.sleep(TALK_AFTER)
        talk = rig.mic.play(AudioFrame(np.concatenate([talk_over.data, _silence(0.3)]), SAMPLE_RATE))
        talk.done.wait(30)
        assert talk.started is not None
        item: dict[str, Any] | None = None
        story: dict[str, Any] | None = None
        try:
            item = rig.daemon.wait_item("user", talk.started, timeout=30)
            story = rig.daemon.wait_item("assistant", since, timeout=30)
        except TimeoutError:
            pass
        time.sleep(0.8)
        # from the first word on: a pause of the reply before it is not the reply stopping
        silent = rig.speaker.first_silence(talk.started + voice_start, hold=0.6)
        if story is not None and not story.get("interrupted"):
            ended_first += 1  # a reply that ended by itself was not stopped, however soon it went quiet
        elif item is not None and silent is not None:
            stopped += 1
            latencies.append(silent - (talk.started + voice_start))
            errors.append(_wer(item["content"]))
            heard.append(item["content"])
        else:  # why: not heard as words (the reply resumed), or heard but the speaker played on
            missed.append(
                {
                    "heard": item["content"] if item is not None else None,
                    "paused": bool(rig.daemon.find("speech_paused", talk.started)),
                    "resumed": bool(rig.daemon.find("agent_false_interruption", talk.started)),
                    "went_quiet": silent is not None,
                }
            )
    return {
        "runs": count,
        "stopped_and_heard": stopped,
        "replies_ended_before_the_talk_over": ended_first,
        "talk_over_start_to_silence_p50": percentile(latencies, 0.5),
        "talk_over_start_to_silence_max": percentile(latencies, 1.0),
        "wer_during_double_talk": round(float(np.mean(errors)), 3) if errors else None,
        "heard": heard[:5],
        "missed": missed,
    }


def _clean_wer(rig: EchoRig, head: np.ndarray, request: AudioFrame, talk_over: AudioFrame) -> float | None:
    """The same interruption said to a silent device: the WER to compare double talk with."""
    assert rig.daemon is not None
    rig.daemon.wait_state("waiting_for_wake", timeout=120)
    time.sleep(0.5)
    since = time.time()
    rig.mic.play(AudioFrame(np.concatenate([head, talk_over.data, _silence(0.3)]), SAMPLE_RATE))
    try:
        item = rig.daemon.wait_item("user", since, timeout=60)
    except TimeoutError:
        return None
    rig.daemon.wait_state("waiting_for_wake", timeout=120)
    return round(_wer(item["content"]), 3)


def _wer(heard: str) -> float:
    """Word error rate of ``heard`` against the talk-over's words, numbers read as digits on both sides
    ("ten" and "10" are the same word; the corpus's own normaliser drops digits)."""
    import jiwer
    from text_to_num import alpha2digit

    def words(text: str) -> str:
        return " ".join(re.sub(r"[^a-z0-9' ]", " ", str(alpha2digit(text.lower(), "en"))).split())

    return float(jiwer.wer(words(TALK_OVER[1]), words(heard)))


def _status(rig: EchoRig) -> dict[str, Any]:
    """The daemon's status, from its socket in the rig's runtime directory."""
    return read_status(Path(rig.server.env["XDG_RUNTIME_DIR"]) / "appliance" / "status.sock")


__all__ = ["BLOCK", "EchoBenchOptions", "echo_figures", "echo_rig", "measure_canceller", "run_echo_bench"]

if __name__ == "__main__":  # run by _canceller_in_subprocess, inside the rig's environment
    print(json.dumps(asyncio.run(measure_canceller(read_audio(Path(sys.argv[1]), rate=None)))))
