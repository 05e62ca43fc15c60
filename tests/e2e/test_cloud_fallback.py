"""The daemon with a cloud LLM first and the local model as its fallback, end to end through the sound server.

The cloud is a loopback OpenAI server in this process (the real client and wire protocol); the wake phrase is
SYNTHETIC (Piper), the questions are REAL recorded speech (pocketsphinx-testdata).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.rig.daemon_process import DaemonProcess
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.openai import OpenAIServer
from appliance.rig.loopback.server import ServerThread, serve_in_thread
from appliance.rig.sound_server import MicFeeder, MonitorRecorder, VirtualSoundServer
from tests.e2e.conftest import DAEMON_ARGS
from tests.e2e.test_daemon import wake_then

CLOUD_REPLY = "The cloud heard you loud and clear."
KEY = "sk-loopback-e2e"


@pytest.fixture(scope="module")
def cloud() -> Iterator[ServerThread]:
    server = OpenAIServer(api_key=KEY)
    server.reply = CLOUD_REPLY
    with serve_in_thread(server) as thread:
        yield thread


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def daemon_config(cloud: ServerThread, test_config: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = Path(tmp_path_factory.mktemp("cloud-daemon")) / "config.toml"
    config.write_text(
        test_config.read_text()
        + '\n[privacy]\nallow_cloud = true\n\n[llm]\nproviders = ["openai", "local"]\n\n'
        + f'[cloud.openai]\nbase_url = "{cloud.url}/v1"\nmodel = "loopback-1"\n'
        + f"\n[metrics]\nenabled = true\nport = {free_port()}\n"
    )
    return config


@pytest.fixture(scope="module")
def daemon(sound_server: VirtualSoundServer, mic: MicFeeder, daemon_config: Path) -> Iterator[DaemonProcess]:
    log = daemon_config.parent / "daemon.log"
    proc = DaemonProcess(DAEMON_ARGS, {**sound_server.env, "OPENAI_API_KEY": KEY}, log, config=daemon_config)
    try:
        proc.wait_ready()
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"the daemon did not stop cleanly (exit {code}); log in {log}"


def ask(daemon: DaemonProcess, mic: MicFeeder, speaker: MonitorRecorder, synth, question) -> tuple[dict, str]:  # type: ignore[no-untyped-def,type-arg]
    """One turn: its metrics, the reply as recorded in the conversation, and that it was heard at the speaker."""
    daemon.wait_state("waiting_for_wake", timeout=20)
    audio, speech_end = wake_then(synth, question)
    since = time.time()
    clip = mic.play(audio)
    deadline = time.monotonic() + 60
    while not (answered := [e for e in daemon.find("metrics_collected", since) if not e["metrics"]["interrupted"]]):
        # a turn ended early by the turn detector ("Go." then a pause) is cut by the rest of the question, which
        # becomes the next turn: the reply to the whole question is the one to look at
        assert time.monotonic() < deadline, "no reply played to its end within 60 s"
        time.sleep(0.05)
    metrics = answered[0]["metrics"]
    items = [e["item"] for e in daemon.find("conversation_item_added", since)]
    replies = [item["content"] for item in items if item["role"] == "assistant"]
    assert clip.started is not None and replies
    assert speaker.first_sound(clip.started + speech_end + 0.05) is not None, "no reply at the speaker"
    return metrics, replies[-1]


def test_a_failing_cloud_is_answered_locally_in_the_same_turn_and_serves_again_once_it_recovers(
    daemon: DaemonProcess,
    daemon_config: Path,
    sound_server: VirtualSoundServer,
    mic: MicFeeder,
    speaker: MonitorRecorder,
    cloud: ServerThread,
    synth,
    go_forward,
    go_somewhere,
) -> None:
    env = {**sound_server.env}
    metrics, reply = ask(daemon, mic, speaker, synth, go_forward)
    assert (metrics["llm_provider"], reply) == ("openai", CLOUD_REPLY)  # healthy: the cloud answers first

    cloud.set_fault(Fault.STATUS_500)
    requests = cloud.server.requests
    metrics, reply = ask(daemon, mic, speaker, synth, go_somewhere)
    assert metrics["llm_provider"] == "local" and reply  # (the small local model may echo the earlier answer)
    assert cloud.server.requests == requests + 1  # the cloud was asked once, failed, and the turn went on
    assert [(a["provider"], a["outcome"]) for a in metrics["llm_failed"]] == [("openai", "error")]
    assert metrics["llm_failed"][0]["seconds"] < 0.5  # a 500 costs the turn little, not the attempt timeout
    assert metrics["eos_to_first_audio"] is not None

    cloud.set_fault(Fault.NONE)
    metrics, reply = ask(daemon, mic, speaker, synth, go_forward)
    assert (metrics["llm_provider"], reply, metrics["llm_failed"]) == ("openai", CLOUD_REPLY, [])
    sent = [line for line in daemon.log if "data sent off the device" in line]
    assert len(sent) >= 3 and all("openai" in line for line in sent)
    assert not any(CLOUD_REPLY in line or "go forward" in line for line in sent)  # sizes, never content

    status = subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(daemon_config), "status"],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    assert "llm: openai -> local; requests: local:ok 1, openai:error 1, openai:ok " in status.stdout
    assert "sent off the device: openai:text " in status.stdout
    doc = json.loads(
        subprocess.run(
            [sys.executable, "-m", "appliance", "--config", str(daemon_config), "status", "--json"],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
            check=True,
        ).stdout
    )
    scraped = urllib.request.urlopen(doc["metrics"], timeout=10).read().decode()
    assert 'appliance_provider_requests_total{outcome="error",provider="openai",stage="llm"} 1.0' in scraped
    assert 'appliance_provider_fallback_seconds_count{stage="llm"} 1.0' in scraped
    assert 'appliance_sent_off_device_bytes_total{kind="text",provider="openai"}' in scraped
