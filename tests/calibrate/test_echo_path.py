"""The test sweep through a speaker the microphone can hear: a PulseAudio room built from virtual devices.

The microphone calibrate records is the monitor of a "room" sink into which both the fed microphone and the
speaker's monitor are looped back (60 ms each), so the sweep reaches the microphone like an echo. Room sound is
SYNTHETIC white noise; the spoken sentence is the bundled demo clip ("Hey Jarvis. What is the capital of
France?", SYNTHETIC speech made with the Piper voice), so the wake phrase is in it.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.audio.wav import read_audio
from appliance.bench import DEMO_CLIP
from appliance.rig.sound_server import MIC, SPEAKER, MicFeeder, VirtualSoundServer
from tests.calibrate.helpers import calibrate, white_room

LOOPBACK_MS = 60


@pytest.fixture(scope="module")
def echoing_room(sound_server: VirtualSoundServer) -> Iterator[MicFeeder]:
    def pactl(*args: str) -> None:
        subprocess.run(["pactl", *args], env=sound_server.env, check=True, capture_output=True, timeout=10)

    pactl("load-module", "module-null-sink", "sink_name=room", "rate=16000", "channels=1")
    for source in (MIC, f"{SPEAKER}.monitor"):
        pactl("load-module", "module-loopback", f"source={source}", "sink=room", f"latency_msec={LOOPBACK_MS}")
    pactl("set-default-source", "room.monitor")
    room = white_room(sound_server.fifo, 30).start()
    yield room
    room.stop()


def test_the_sweep_finds_the_echo_delay_and_level_and_a_dry_run_writes_nothing(
    sound_server: VirtualSoundServer, echoing_room, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[wake]\nthreshold = 0.6\n")
    run = calibrate(sound_server, config, echoing_room, read_audio(DEMO_CLIP), "--duration", "3", "--dry-run")
    assert run.returncode == 0, run.stderr[-2000:]
    echo = run.line("echo:")
    found = re.search(r"heard the speaker at (-?[\d.]+) dB relative to what was played; delay (\d+) ms", echo)
    assert found, echo
    level, delay_ms = float(found[1]), int(found[2])
    assert -4.0 < level < 2.0  # the loopback plays it back at full level
    assert LOOPBACK_MS / 2 < delay_ms < LOOPBACK_MS + 150
    assert "needs echo cancellation" in run.stdout
    assert "your wake phrase scored" in run.line("wake.threshold")
    assert f"dry run: nothing written to {config}" in run.stdout
    assert config.read_text() == "[wake]\nthreshold = 0.6\n" and not list(tmp_path.glob("*.bak"))
