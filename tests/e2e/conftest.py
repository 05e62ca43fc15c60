"""A real PulseAudio server with a virtual microphone and speaker, and the daemon running against it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.rig.daemon_process import DaemonProcess
from appliance.rig.sound_server import MicFeeder, VirtualSoundServer

DAEMON_ARGS = ["--listening-timeout", "3", "--follow-up", "1.5"]


@pytest.fixture(scope="module")
def daemon(
    sound_server: VirtualSoundServer, mic: MicFeeder, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DaemonProcess]:
    log = Path(tmp_path_factory.mktemp("daemon")) / "daemon.log"
    proc = DaemonProcess(DAEMON_ARGS, sound_server.env, log)
    try:
        proc.wait_ready()
        yield proc
    finally:
        code = proc.stop()
        assert code == 0, f"the daemon did not stop cleanly (exit {code}); log in {log}"
