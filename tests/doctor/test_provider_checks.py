"""``doctor`` checks every cloud provider the config names, one line each: reachable, key accepted. The providers
are loopback servers speaking the real protocols; the checks run the real clients."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.rig.loopback.deepgram import DeepgramServer
from appliance.rig.loopback.elevenlabs import ElevenLabsServer
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.openai import OpenAIServer
from appliance.rig.loopback.server import ServerThread, serve_in_thread
from tests.doctor.test_doctor import config_file, doctor

KEYS = {"OPENAI_API_KEY": "sk-o", "DEEPGRAM_API_KEY": "dg-k", "ELEVENLABS_API_KEY": "el-k"}


@pytest.fixture(scope="module")
def clouds() -> Iterator[dict[str, ServerThread]]:
    with (
        serve_in_thread(OpenAIServer(api_key=KEYS["OPENAI_API_KEY"])) as openai,
        serve_in_thread(DeepgramServer(api_key=KEYS["DEEPGRAM_API_KEY"])) as deepgram,
        serve_in_thread(ElevenLabsServer(api_key=KEYS["ELEVENLABS_API_KEY"])) as elevenlabs,
    ):
        yield {"openai": openai, "deepgram": deepgram, "elevenlabs": elevenlabs}


def cloud_config(tmp_path: Path, clouds: dict[str, ServerThread]) -> Path:
    deepgram = clouds["deepgram"].server
    assert isinstance(deepgram, DeepgramServer)
    return config_file(
        tmp_path,
        '[privacy]\nallow_cloud = true\n[llm]\nproviders = ["openai", "local"]\n'
        '[stt]\nproviders = ["deepgram", "openai", "local"]\n[tts]\nproviders = ["elevenlabs", "local"]\n'
        f'[cloud.openai]\nbase_url = "{clouds["openai"].url}/v1"\nmodel = "loopback-1"\n'
        f'[cloud.deepgram]\nbase_url = "{deepgram.ws_url}"\n'
        f'[cloud.elevenlabs]\nbase_url = "{clouds["elevenlabs"].url}"\nvoice_id = "bench"\n',
    )


def run(config: Path, env: dict[str, str]) -> dict[str, dict[str, str]]:
    _, checks = doctor("--no-engines", "--no-devices", options=("--config", str(config)), env={**os.environ, **env})
    return {name: c for name, c in checks.items() if name.startswith("provider")}


def test_every_named_provider_is_checked_once_with_the_stages_it_serves(
    tmp_path: Path, clouds: dict[str, ServerThread]
) -> None:
    checks = run(cloud_config(tmp_path, clouds), KEYS)
    assert list(checks) == ["provider.deepgram", "provider.openai", "provider.elevenlabs"]
    assert all(c["status"] == "ok" for c in checks.values()), [c["detail"] for c in checks.values()]
    assert "reachable, key accepted" in checks["provider.openai"]["detail"]
    assert "loopback-1 listed" in checks["provider.openai"]["detail"]
    assert "serves stt, llm" in checks["provider.openai"]["detail"]
    assert "voice 'Loopback bench'" in checks["provider.elevenlabs"]["detail"]


def test_a_refused_key_an_unreachable_server_and_a_missing_key_each_fail_with_the_fix(
    tmp_path: Path, clouds: dict[str, ServerThread]
) -> None:
    clouds["openai"].set_fault(Fault.REFUSED)
    try:
        checks = run(cloud_config(tmp_path, clouds), {**KEYS, "DEEPGRAM_API_KEY": "wrong", "ELEVENLABS_API_KEY": ""})
    finally:
        clouds["openai"].set_fault(Fault.NONE)
    deepgram, openai, elevenlabs = checks["provider.deepgram"], checks["provider.openai"], checks["provider.elevenlabs"]
    assert deepgram["status"] == "fail" and "key refused" in deepgram["detail"]
    assert deepgram["fix"] == "check cloud.deepgram.api_key"
    assert openai["status"] == "fail" and "not reachable at http://127.0.0.1" in openai["detail"]
    assert elevenlabs["status"] == "fail" and "ELEVENLABS_API_KEY" in elevenlabs["fix"]


def test_with_every_stage_local_nothing_is_checked_and_nothing_leaves(tmp_path: Path) -> None:
    checks = run(config_file(tmp_path, ""), {})
    assert checks == {
        "provider": {
            "name": "provider",
            "status": "skip",
            "detail": "every stage is local: nothing leaves the device",
            "fix": "",
            "seconds": checks["provider"]["seconds"],
        }
    }
