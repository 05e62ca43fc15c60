"""calibrate's echo figures against a path whose delay and level are known: the test sound card's acoustic
path (``appliance.rig.acoustic``) at three delays and gains, each with a room tail 12 dB under the direct
sound. Room sound is SYNTHETIC white noise; the spoken sentence is the bundled demo clip (SYNTHETIC speech).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.audio.wav import read_audio
from appliance.bench import DEMO_CLIP
from appliance.rig.acoustic import AcousticPath, EchoSettings
from appliance.rig.sound_server import SPEAKER, VirtualSoundServer
from tests.calibrate.helpers import calibrate, white_room

RIG_LATENCY = 0.06
"""Seconds the rig itself adds to the path at most (the monitor's buffer, the feeder's blocks)."""


@pytest.mark.parametrize(("delay", "gain_db"), [(0.02, -12.0), (0.08, -6.0), (0.12, 0.0)])
def test_calibrate_reports_the_echo_path_it_was_given(tmp_path: Path, delay: float, gain_db: float) -> None:
    path = EchoSettings(delay=delay, gain_db=gain_db, reverb_db=-12.0)
    with VirtualSoundServer(tmp_path / "pulse") as server:
        acoustic = AcousticPath(server.env, SPEAKER, path)
        room = white_room(server.fifo, 30)
        room.echo = acoustic
        room.start()
        try:
            config = tmp_path / "config.toml"
            run = calibrate(server, config, room, read_audio(DEMO_CLIP), "--duration", "3", "--dry-run")
        finally:
            room.stop()
            acoustic.stop()
    assert run.returncode == 0, run.stderr[-2000:]
    echo = run.line("echo:")
    found = re.search(r"at (-?[\d.]+) dB relative to what was played; delay (\d+) ms.* takes out (\d+) dB", echo)
    assert found, echo
    level, delay_ms, erle = float(found[1]), int(found[2]), int(found[3])
    assert level == pytest.approx(path.energy_db, abs=1.5), echo
    assert delay * 1000 <= delay_ms <= (delay + RIG_LATENCY) * 1000, echo
    assert erle >= 20, echo
