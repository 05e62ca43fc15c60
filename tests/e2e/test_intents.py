"""Local intents through the daemon and a real sound server: answered without the LLM, and a timer that
rings even when the daemon was stopped while it ran. The spoken requests are SYNTHETIC (Piper)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.rig.daemon_process import DaemonProcess
from appliance.rig.sound_server import MicFeeder, MonitorRecorder, VirtualSoundServer
from tests.e2e.test_daemon import wake_then


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("intents")
    path = root / "config.toml"
    path.write_text(
        f'[service]\nstate_dir = "{root / "state"}"\n\n'
        "[agent]\nlistening_timeout = 3\nfollow_up_window = 1.5\nearcons = false\n"
    )
    return path


@pytest.fixture
def daemon(sound_server: VirtualSoundServer, mic: MicFeeder, config: Path, tmp_path: Path) -> Iterator[DaemonProcess]:
    proc = DaemonProcess([], sound_server.env, tmp_path / "daemon.log", config=config)
    try:
        proc.wait_ready()
        proc.wait_state("waiting_for_wake", timeout=30)
        yield proc
    finally:
        assert proc.stop() == 0


def test_what_time_is_it_is_answered_on_the_device_without_the_llm(
    daemon: DaemonProcess, mic: MicFeeder, speaker: MonitorRecorder, synth
) -> None:
    audio, speech_end = wake_then(synth, synth("What time is it?"))
    since = time.time()
    clip = mic.play(audio)
    metrics = daemon.wait_event("metrics_collected", since, timeout=60)["metrics"]
    said = daemon.wait_item("assistant", since)["content"]
    assert re.fullmatch(r"It's \d{1,2}(:\d\d)? [AP]M\.", said), said
    assert metrics["llm_ttft"] is None  # the LLM was not asked
    assert clip.started is not None
    assert speaker.first_sound(clip.started + speech_end) is not None, "nothing at the speaker"


def test_a_timer_set_by_voice_rings_after_a_restart(
    sound_server: VirtualSoundServer, mic: MicFeeder, config: Path, tmp_path: Path, synth
) -> None:
    first = DaemonProcess([], sound_server.env, tmp_path / "first.log", config=config)
    try:
        first.wait_ready()
        first.wait_state("waiting_for_wake", timeout=30)
        audio, _ = wake_then(synth, synth("Set a timer for ten seconds."))
        since = time.time()
        mic.play(audio)
        confirmed = first.wait_item("assistant", since, timeout=60)
        set_at = time.time()
    finally:
        assert first.stop() == 0  # stopped while the timer runs
    assert confirmed["content"] == "Timer set for 10 seconds."
    time.sleep(max(0.0, set_at + 10.5 - time.time()))
    again = DaemonProcess([], sound_server.env, tmp_path / "again.log", config=config)
    try:
        again.wait_ready()
        rang = again.wait_item("assistant", set_at, timeout=60)
    finally:
        assert again.stop() == 0
    assert re.fullmatch(r"Your 10 second timer (is done|finished \d+ seconds? ago)\.", rang["content"])
    assert any("timer rang" in line for line in again.log)
