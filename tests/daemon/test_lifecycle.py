"""The daemon as systemd runs it: READY, the watchdog, status, metrics, the saved conversation and the stop.

A real PulseAudio server with virtual devices; sd_notify messages are received on a real NOTIFY_SOCKET
datagram socket. The wake phrase and the story request are SYNTHETIC (Piper); "go forward ten meters" is
REAL recorded speech.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.rig.daemon_process import DaemonProcess
from appliance.rig.sound_server import MicFeeder, MonitorRecorder, VirtualSoundServer
from appliance.service.daemon import CLOSE_TIMEOUT
from appliance.service.record import RECORD_FILE
from tests.daemon.test_watchdog import NotifySocket
from tests.e2e.test_daemon import wake_then

WATCHDOG_SECONDS = 3.0
STALL = 2.5
STOP_TIMEOUT = 4.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Service:
    """The daemon started the way the unit starts it: a config file, NOTIFY_SOCKET and WATCHDOG_USEC."""

    def __init__(self, server: VirtualSoundServer, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.port = free_port()
        self.config = root / "config.toml"
        self.config.write_text(
            f'[service]\nstate_dir = "{self.state}"\nstop_timeout = {STOP_TIMEOUT}\nwatchdog_stall = {STALL}\n\n'
            f"[metrics]\nenabled = true\nport = {self.port}\n\n"
            "[agent]\nkeep_history = true\nlistening_timeout = 3\nfollow_up_window = 1.5\nearcons = false\n"
            # the stop and kill tests need a reply that is still playing seconds in: the default instructions
            # ask for one or two short sentences, which the model sometimes keeps to even for a story
            'instructions = "You are a voice assistant. Asked for a story, tell a long one, of at least eight '
            'sentences. Otherwise answer in one or two short sentences."\n'
        )
        self.notify = NotifySocket(root / f"notify-{time.monotonic_ns()}.sock")
        self.env = {
            **server.env,
            "NOTIFY_SOCKET": str(self.notify.path),
            "WATCHDOG_USEC": str(int(WATCHDOG_SECONDS * 1e6)),
        }
        self.daemon = DaemonProcess([], self.env, root / "daemon.log", config=self.config)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "appliance", "--config", str(self.config), *args]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60, check=False)

    def status(self) -> dict:  # type: ignore[type-arg]
        proc = self.cli("status", "--json")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
            return response.read().decode()

    def wait_message(self, prefix: str, timeout: float = 60.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, m in self.notify.messages:
                if m.startswith(prefix):
                    return t
            time.sleep(0.05)
        raise AssertionError(f"no {prefix!r} on the notify socket; got {[m for _, m in self.notify.messages]}")


@pytest.fixture(scope="module")
def service(
    sound_server: VirtualSoundServer, mic: MicFeeder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    svc = Service(sound_server, tmp_path_factory.mktemp("service"))
    try:
        svc.daemon.wait_ready()
        yield svc
    finally:
        svc.daemon.stop()
        svc.notify.close()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


def test_ready_only_after_the_models_and_the_microphone_then_the_watchdog_is_fed(service: Service) -> None:
    ready = service.wait_message("READY=1")
    opened = [line for line in service.daemon.log if "microphone open" in line]
    loaded = [line for line in service.daemon.log if "models loaded" in line]
    assert opened and loaded, "READY before the models loaded and the microphone opened"
    assert "STATUS=listening for hey_jarvis" in next(m for t, m in service.notify.messages if t == ready)
    time.sleep(WATCHDOG_SECONDS)
    pings = service.notify.pings(ready)
    assert len(pings) >= 3
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < WATCHDOG_SECONDS / 2, f"pings too far apart: {max(gaps):.2f} s"


def test_status_answers_on_a_socket_only_its_owner_and_group_can_use(service: Service) -> None:
    doc = service.status()
    assert doc["state"] == "waiting_for_wake" and doc["ready"] and doc["pid"] == service.daemon.proc.pid
    assert doc["watchdog"]["enabled"] and doc["watchdog"]["pings"] > 0 and doc["watchdog"]["problem"] is None
    assert doc["microphone"]["device"] and doc["turns"] == 0
    path = Path(service.env["XDG_RUNTIME_DIR"]) / "appliance" / "status.sock"
    assert stat.S_ISSOCK(path.stat().st_mode) and stat.S_IMODE(path.stat().st_mode) == 0o660
    text = service.cli("status")
    assert text.returncode == 0 and "waiting_for_wake" in text.stdout and "watchdog: fed" in text.stdout


def test_a_turn_shows_in_status_and_in_the_metrics(service: Service, mic: MicFeeder, synth, go_forward) -> None:
    before = service.metrics()
    assert metric(before, "appliance_turns_total") == 0
    assert metric(before, "process_resident_memory_bytes") > 100e6
    assert 'appliance_agent_state{appliance_agent_state="waiting_for_wake"} 1.0' in before
    audio, _ = wake_then(synth, go_forward)
    clip = mic.play(audio)
    service.daemon.wait_event("metrics_collected", clip.started or 0, timeout=60)
    service.daemon.wait_state("waiting_for_wake", timeout=20)
    doc = service.status()
    last = doc["last_turn"]
    assert doc["turns"] == 1 and doc["wake_detections"] == 1
    assert last["eos_to_first_audio"] is not None and 0 < last["eos_to_first_audio"] < 5
    assert last["stt_latency"] and last["llm_ttft"] and last["tts_ttfb"]
    assert doc["latency"]["eos_to_first_audio"]["n"] == 1
    after = service.metrics()
    assert metric(after, "appliance_turns_total") == 1
    assert metric(after, 'appliance_wake_detections_total{word="hey_jarvis"}') == 1
    assert metric(after, "appliance_eos_to_first_audio_seconds_count") == 1
    assert metric(after, "appliance_stt_latency_seconds_count") == 1
    text = service.cli("status").stdout
    assert "end of speech -> first audio" in text and "p50" in text
    transcript = service.daemon.find("user_input_transcribed")[-1]["transcript"]
    assert not any(transcript in line for line in service.daemon.log), "a transcript reached the INFO log"


def test_a_wedged_audio_path_stops_the_pings_and_they_resume_when_it_is_back(
    service: Service, sound_server: VirtualSoundServer
) -> None:
    """The sound server freezes (SIGSTOP): no audio reaches the agent, and a device call may block the loop."""
    pid = int(
        subprocess.run(
            ["pgrep", "-f", str(sound_server.root / "default.pa")], capture_output=True, text=True, check=True
        ).stdout.split()[0]
    )
    os.kill(pid, signal.SIGSTOP)
    frozen = time.monotonic()
    try:
        time.sleep(STALL + 4.0)
    finally:
        os.kill(pid, signal.SIGCONT)
    thawed = time.monotonic()
    late = service.notify.pings(frozen + STALL + WATCHDOG_SECONDS / 3 + 0.5, thawed)
    assert late == [], f"{len(late)} pings while no audio reached the agent"
    deadline = time.monotonic() + 40
    while not service.notify.pings(thawed) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert service.notify.pings(thawed), "the pings did not resume when the sound server came back"


def test_sigterm_during_a_reply_finishes_within_the_bound_and_keeps_the_conversation(
    service: Service, mic: MicFeeder, speaker: MonitorRecorder, synth
) -> None:
    service.daemon.wait_state("waiting_for_wake", timeout=30)
    audio, _ = wake_then(synth, synth("Tell me a long story about a dragon who lives in a castle."))
    since = time.time()
    mic.play(audio)
    service.daemon.wait_event("agent_state_changed", since, timeout=60, new_state="speaking")
    time.sleep(0.5)
    term = time.monotonic()
    term_wall = time.time()
    service.daemon.proc.send_signal(signal.SIGTERM)
    code = service.daemon.proc.wait(STOP_TIMEOUT + CLOSE_TIMEOUT + 2)
    took = time.monotonic() - term
    assert code == 0, f"exit {code}"
    assert took < STOP_TIMEOUT + CLOSE_TIMEOUT
    service.wait_message("STOPPING=1", timeout=1)
    assert service.wait_message("STOPPING=1") >= term
    time.sleep(1.0)  # the monitor's recording lags the speaker a little
    silent = speaker.first_silence(term_wall, hold=0.5)
    levels = speaker.levels(term_wall - 1)
    assert silent is not None, f"the speaker did not fall silent after SIGTERM: {levels[:5]}...{levels[-5:]}"
    print(f"sound after SIGTERM: {silent - term_wall:.2f} s; exit after {took:.2f} s")
    assert silent - term_wall < STOP_TIMEOUT + 1.0  # the sentence, or the bound
    assert any("dragon" in u for u in recorded_user_words(service)), recorded_user_words(service)
    assert stat.S_IMODE((service.state / RECORD_FILE).stat().st_mode) == 0o600
    # the record holds what was heard of the reply, marked cut, and the turn says how much played
    proc = service.cli("history", "export", "--json")
    conversations = [c["items"] for c in json.loads(proc.stdout)["conversations"]]
    items = next(c for c in conversations if any("dragon" in i.get("content", "") for i in c))
    asked = next(n for n, i in enumerate(items) if i.get("role") == "user" and "dragon" in i["content"])
    story = next(i for i in items[asked:] if i.get("role") == "assistant")  # the reply to that request
    metrics = service.daemon.find("metrics_collected", since)[-1]["metrics"]
    assert story["interrupted"] and metrics["interrupted"], story
    assert metrics["played"] > 0.3 and len(story["content"]) > 10


def recorded_user_words(service: Service) -> list[str]:
    """What the user said, in every recorded conversation (read as a user would: ``history export``)."""
    proc = service.cli("history", "export", "--json")
    assert proc.returncode == 0, proc.stderr
    conversations = json.loads(proc.stdout)["conversations"]
    return [i["content"] for c in conversations for i in c["items"] if i.get("role") == "user"]


def test_a_restart_restores_the_conversation_and_a_second_signal_exits_at_once(
    sound_server: VirtualSoundServer, mic: MicFeeder, tmp_path: Path, service: Service
) -> None:
    again = DaemonProcess([], service.env, tmp_path / "again.log", config=service.config)
    try:
        again.wait_ready()
        assert any("conversation restored" in line for line in again.log)
        again.proc.send_signal(signal.SIGTERM)
        time.sleep(0.1)  # two signals at once are one to the process: the second comes a moment later
        start = time.monotonic()
        again.proc.send_signal(signal.SIGTERM)
        code = again.proc.wait(10)
        assert time.monotonic() - start < 0.5
        assert code == -signal.SIGTERM, f"exit {code}: the graceful stop ended it, not the second signal"
    finally:
        again.stop()


def test_a_kill_mid_reply_loses_nothing_that_was_recorded(
    sound_server: VirtualSoundServer, mic: MicFeeder, tmp_path: Path, service: Service, synth
) -> None:
    daemon = DaemonProcess([], service.env, tmp_path / "killed.log", config=service.config)
    try:
        daemon.wait_ready()
        daemon.wait_state("waiting_for_wake", timeout=30)
        audio, _ = wake_then(synth, synth("Tell me a long story about a unicorn who lives in a forest."))
        since = time.time()
        mic.play(audio)
        added = daemon.wait_event("conversation_item_added", since, timeout=60)
        daemon.wait_event("agent_state_changed", since, timeout=60, new_state="speaking")
        heard = daemon.wait_event("conversation_item_updated", since, timeout=10)["item"]
        # the next update comes a second later: by then the first one has been committed
        daemon.wait_event("conversation_item_updated", time.time(), timeout=10)
        daemon.proc.kill()  # SIGKILL: no clean-up of any kind
        daemon.proc.wait(10)
    finally:
        daemon.stop()
    assert "unicorn" in added["item"]["content"]
    assert any("unicorn" in u for u in recorded_user_words(service))  # the user's turn, written when it was said
    proc = service.cli("history", "export", "--json")
    replies = [i for c in json.loads(proc.stdout)["conversations"] for i in c["items"] if i.get("id") == heard["id"]]
    assert replies and replies[0]["interrupted"] and heard["content"] in replies[0]["content"]  # as far as heard
    again = DaemonProcess([], service.env, tmp_path / "after-kill.log", config=service.config)
    try:
        again.wait_ready()
        assert any("conversation restored" in line for line in again.log)
    finally:
        again.stop()


def heard_mid_sentence(daemon: DaemonProcess, since: float, timeout: float = 30.0) -> dict:  # type: ignore[type-arg]
    """The first update of the reply that ends inside a sentence past the first piece (six words at most): that
    sentence is still playing when it arrives, so more of it is heard in the next half second."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in daemon.find("conversation_item_updated", since):
            content = event["item"]["content"]
            if len(content.split()) > 6 and content[-1].isalnum():
                return event
        time.sleep(0.01)
    raise AssertionError(f"no update of the reply ended inside a sentence within {timeout} s")


def test_a_second_sigterm_mid_reply_saves_what_was_heard_and_exits_at_once(
    sound_server: VirtualSoundServer, mic: MicFeeder, tmp_path: Path, service: Service, synth
) -> None:
    """The reply is recorded as far as it was heard every second while it plays, but not while the first stop
    lets its sentence finish: the second signal saves what was heard by then before the process ends."""
    service.daemon.stop()  # one daemon on the devices (the stop test has ended it when the module runs in order)
    daemon = DaemonProcess([], service.env, tmp_path / "twice.log", config=service.config)
    try:
        daemon.wait_ready()
        daemon.wait_state("waiting_for_wake", timeout=30)
        audio, _ = wake_then(synth, synth("Tell me a long story about a wizard who lives in a tower."))
        since = time.time()
        mic.play(audio)
        update = heard_mid_sentence(daemon, since)
        heard = update["item"]
        daemon.proc.send_signal(signal.SIGTERM)  # the next update is due a second after this one: there is none
        # half a second more of the sentence is heard; if the sentence ends sooner, the clean-up after it
        # (most of a second) is still under way when the second signal comes
        time.sleep(0.5)
        second = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(10)
        took = time.monotonic() - second
    finally:
        daemon.stop()
    assert code == -signal.SIGTERM, f"exit {code}: the graceful stop ended it, not the second signal"
    assert took < 0.5, f"{took:.2f} s from the second signal to the exit"
    assert any("wizard" in u for u in recorded_user_words(service))
    proc = service.cli("history", "export", "--json")
    items = [i for c in json.loads(proc.stdout)["conversations"] for i in c["items"]]
    reply = next((i for i in items if i.get("id") == heard["id"]), None)
    assert reply is not None and reply["interrupted"], reply
    # more than the last update before the stop: what played on until the second signal
    assert reply["content"].startswith(heard["content"]) and len(reply["content"]) > len(heard["content"]), reply
    print(f"last update {heard['content']!r}; saved {reply['content']!r}; exit {took:.3f} s after the signal")
