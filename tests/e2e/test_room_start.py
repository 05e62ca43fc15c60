"""``appliance-cli run --room`` as a user starts it, against a loopback LiveKit server that speaks the real
signal protocol as far as the SDK gets (its ``/rtc`` upgrade and ``/rtc/validate``): a mistake is one line on
stderr naming it and the fix, exit 2, and the SDK's own retries stay out of sight."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.rig.loopback.livekit import LiveKitServer
from appliance.rig.loopback.server import ServerThread, serve_in_thread
from appliance.rig.sound_server import VirtualSoundServer


@pytest.fixture(scope="module")
def livekit() -> Iterator[ServerThread]:
    with serve_in_thread(LiveKitServer(keys={"devkey": "secret"})) as thread:
        yield thread


def run_room(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "appliance", "--config", str(config), "run", "--room", "kitchen", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)


@pytest.fixture
def room_config(livekit: ServerThread, test_config: Path, tmp_path: Path) -> Path:
    url = livekit.url.replace("http://", "ws://")
    config = tmp_path / "config.toml"
    config.write_text(test_config.read_text() + f'\n[livekit]\nurl = "{url}"\nreconnect_for = 2.0\n')
    return config


def test_a_room_without_its_key_is_refused_before_any_model_loads(
    room_config: Path, sound_server: VirtualSoundServer
) -> None:
    env = {k: v for k, v in sound_server.env.items() if not k.startswith("LIVEKIT_")}
    proc = run_room(room_config, env)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: livekit.api_key is not set; export LIVEKIT_API_KEY")
    assert "models loaded" not in proc.stderr


@pytest.mark.parametrize(
    ("key", "secret", "says"),
    [
        ("wrongkey", "secret", "refused the API key (LIVEKIT_API_KEY)"),
        ("devkey", "not-the-secret", "the API secret (LIVEKIT_API_SECRET) does not match"),
    ],
)
def test_a_wrong_key_or_secret_fails_the_start_in_one_line_and_names_which(
    room_config: Path, sound_server: VirtualSoundServer, livekit: ServerThread, key: str, secret: str, says: str
) -> None:
    env = {**sound_server.env, "LIVEKIT_API_KEY": key, "LIVEKIT_API_SECRET": secret}
    proc = run_room(room_config, env)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0], proc.stderr[-2000:]
    assert secret not in proc.stderr and "eyJ" not in proc.stderr  # neither the secret nor a token
    assert " livekit: " not in proc.stderr  # the SDK's own lines for its tries are in the debug log only
