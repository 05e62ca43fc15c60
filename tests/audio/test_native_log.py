"""PortAudio's and ALSA's own stderr lines, from a real failed open of the 'pulse' device after its sound server
went away (a private PulseAudio server, told to exit), kept out of the log's stderr; everything else written
to fd 2 goes through unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from appliance.rig.sound_server import VirtualSoundServer

SCRIPT = """
import logging, os, subprocess, sys
import sounddevice as sd
sd.query_devices("pulse")  # PortAudio has found the server's devices
subprocess.run(["pactl", "exit"], check=True, timeout=10)  # ...and the server goes away
from appliance import logs
from appliance.audio.native_log import quiet_native_audio_logs
if sys.argv[1] == "quiet":
    native = quiet_native_audio_logs()
logs.setup(logging.DEBUG if sys.argv[2] == "debug" else logging.INFO)
try:
    sd.InputStream(device="pulse", samplerate=16000, channels=1).close()
except Exception as exc:
    logging.getLogger("test").warning("open failed: %s", type(exc).__name__)
os.write(2, b"a line of someone else's\\n")
if sys.argv[1] == "quiet":
    sys.stderr.flush()
    os.close(2)  # the pipe's last writer: the thread sees its end and sorts what is left
    native.thread.join(5)
    print(native.native_lines)
"""


def _run(tmp_path: Path, mode: str, level: str) -> subprocess.CompletedProcess[str]:
    with VirtualSoundServer(tmp_path / f"pulse-{mode}-{level}") as server:
        return subprocess.run(
            [sys.executable, "-c", SCRIPT, mode, level],
            env={**os.environ, **server.env},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )


def test_without_it_the_libraries_print_their_own_lines(tmp_path: Path) -> None:
    out = _run(tmp_path, "raw", "info")
    assert "ALSA lib" in out.stderr or "Expression '" in out.stderr, out.stderr  # the rig really makes them


def test_the_libraries_lines_go_to_the_debug_log_and_the_rest_to_stderr(tmp_path: Path) -> None:
    out = _run(tmp_path, "quiet", "info")
    assert "ALSA lib" not in out.stderr and "Expression '" not in out.stderr, out.stderr
    assert "open failed: PortAudioError" in out.stderr  # the appliance's own log line
    assert "a line of someone else's" in out.stderr
    assert int(out.stdout.strip()) >= 1
    debug = _run(tmp_path, "quiet", "debug")
    assert "audio library: " in debug.stderr and "ALSA lib" in debug.stderr
