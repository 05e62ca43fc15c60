"""The daemon's work inside the system unit's system-call filter and address families (emulated with
libseccomp, as systemd builds them; the mount and device sandbox needs systemd itself and is not covered)."""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.rig.sound_server import MicFeeder, VirtualSoundServer
from tests.service.conftest import REPO

SANDBOX = Path(__file__).with_name("sandbox.py")
UNIT = REPO / "systemd" / "appliance.service"


def sandboxed(
    *command: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None or ctypes.util.find_library("seccomp") is None:
        pytest.skip("needs systemd-analyze and libseccomp")
    return subprocess.run(
        [sys.executable, str(SANDBOX), str(UNIT), "--", *command],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_the_sandbox_refuses_what_the_unit_forbids() -> None:
    proc = sandboxed(sys.executable, "-c", "import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)")
    assert proc.returncode != 0 and "Operation not permitted" in proc.stderr


def test_doctor_opens_the_devices_and_runs_every_engine_in_the_sandbox(
    sound_server: VirtualSoundServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[audio]\ninput_device = "pulse"\noutput_device = "pulse"\n')
    feeder = MicFeeder(sound_server.fifo, noise_level=30).start()
    try:
        proc = sandboxed(
            sys.executable, "-m", "appliance", "--config", str(config), "doctor", "--json", env=sound_server.env
        )
    finally:
        feeder.stop()
    assert proc.stdout, proc.stderr
    checks = {c["name"]: c for c in json.loads(proc.stdout)["checks"]}
    assert proc.returncode == 0, [c for c in checks.values() if c["status"] == "fail"]
    for name in ("audio.input", "audio.output", "engine.vad", "engine.wake", "engine.stt", "engine.llm", "engine.tts"):
        assert checks[name]["status"] == "ok", checks[name]


NOTIFY_AND_METRICS = """
import sys, urllib.request
from prometheus_client import CollectorRegistry, Counter, start_http_server
from systemd import daemon
registry = CollectorRegistry()
Counter("appliance_turns", "turns", registry=registry).inc()
server, _thread = start_http_server(0, addr="127.0.0.1", registry=registry)
port = server.server_address[1]
body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
assert "appliance_turns_total 1.0" in body, body
daemon.notify("READY=1")
"""


def test_sd_notify_and_the_metrics_endpoint_work_in_the_sandbox(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(path))
        notify.settimeout(10)
        proc = sandboxed(sys.executable, "-c", NOTIFY_AND_METRICS, env={**os.environ, "NOTIFY_SOCKET": str(path)})
        assert proc.returncode == 0, proc.stderr
        assert notify.recv(4096) == b"READY=1"
