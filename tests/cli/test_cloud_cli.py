"""``chat`` and ``converse`` go through the configured chains: a loopback OpenAI server first, the local model
behind it. The bundled clip is SYNTHETIC speech (Piper)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.bench import DEMO_CLIP
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.openai import OpenAIServer
from appliance.rig.loopback.server import ServerThread, serve_in_thread

KEY = "sk-cli"
CLOUD_REPLY = "Paris, says the cloud."


@pytest.fixture(scope="module")
def cloud() -> Iterator[ServerThread]:
    server = OpenAIServer(api_key=KEY)
    server.reply = CLOUD_REPLY
    with serve_in_thread(server) as thread:
        yield thread


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPENAI_API_KEY": KEY},
        check=False,
    )


def cloud_first(tmp_path: Path, cloud: ServerThread) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        '[privacy]\nallow_cloud = true\n[llm]\nproviders = ["openai", "local"]\n'
        f'[cloud.openai]\nbase_url = "{cloud.url}/v1"\nmodel = "loopback-1"\n'
    )
    return path


def test_chat_says_on_stderr_who_answered_and_what_failed(tmp_path: Path, cloud: ServerThread) -> None:
    config = cloud_first(tmp_path, cloud)
    healthy = cli(config, "chat", "What is the capital of France?")
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.strip() == CLOUD_REPLY and "answered by openai" in healthy.stderr
    cloud.set_fault(Fault.STATUS_500)
    try:
        failing = cli(config, "chat", "What is the capital of France?")
    finally:
        cloud.set_fault(Fault.NONE)
    assert failing.returncode == 0, failing.stderr
    assert failing.stdout.strip() and "answered by local, after openai: error in" in failing.stderr


def test_converse_names_the_provider_of_each_stage(tmp_path: Path, cloud: ServerThread) -> None:
    config = cloud_first(tmp_path, cloud)
    proc = cli(config, "converse", "--input", str(DEMO_CLIP), "--output", str(tmp_path / "reply.wav"))
    assert proc.returncode == 0, proc.stderr
    assert f"assistant: {CLOUD_REPLY}" in proc.stdout and "served by: llm openai" in proc.stdout
