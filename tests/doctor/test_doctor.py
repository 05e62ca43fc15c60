"""``appliance-cli doctor`` as a user runs it: a healthy setup on virtual PulseAudio devices, and broken ones."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.engines import Models
from appliance.rig.sound_server import MicFeeder, VirtualSoundServer

ENGINES = ("engine.vad", "engine.wake", "engine.stt", "engine.llm", "engine.tts")


@pytest.fixture(scope="module")
def room(sound_server: VirtualSoundServer) -> Iterator[VirtualSoundServer]:
    """The virtual microphone hears a quiet room's noise, as a real one would."""
    feeder = MicFeeder(sound_server.fifo, noise_level=30).start()
    yield sound_server
    feeder.stop()


def doctor(*args: str, options: tuple[str, ...] = (), env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Exit code and the checks by name; ``options`` go before the command (--config, --models-dir)."""
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", *options, "doctor", "--json", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.stdout, proc.stderr
    return proc.returncode, {c["name"]: c for c in json.loads(proc.stdout)["checks"]}


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_a_healthy_setup_passes_with_every_engine_timed(room: VirtualSoundServer, tmp_path: Path) -> None:
    config = config_file(tmp_path, '[audio]\ninput_device = "pulse"\noutput_device = "pulse"\n')
    code, checks = doctor(options=("--config", str(config)), env=room.env)
    assert code == 0, [c for c in checks.values() if c["status"] == "fail"]
    assert checks["config"]["status"] == "ok"
    for name in ("audio.input", "audio.output"):
        assert checks[name]["status"] == "ok" and "16000 Hz" in checks[name]["detail"]
    for name in ENGINES:
        assert checks[name]["status"] == "ok", checks[name]
        assert checks[name]["seconds"] > 0 and "loaded in" in checks[name]["detail"]
    assert "capital of France" in checks["engine.stt"]["detail"]
    assert all(c["status"] in ("ok", "skip") for c in checks.values() if c["name"].startswith("models."))


def test_a_missing_microphone_fails_and_names_the_devices_there_are(room: VirtualSoundServer, tmp_path: Path) -> None:
    config = config_file(tmp_path, '[audio]\ninput_device = "usb-mic-9"\noutput_device = "pulse"\n')
    code, checks = doctor("--no-engines", options=("--config", str(config)), env=room.env)
    assert code == 1
    mic = checks["audio.input"]
    assert mic["status"] == "fail" and "usb-mic-9" in mic["detail"]
    assert "audio.input_device" in mic["fix"] and "'pulse'" in mic["fix"]
    assert checks["audio.output"]["status"] == "ok"


def test_missing_models_fail_each_by_name_with_the_fetch_command(tmp_path: Path) -> None:
    empty = tmp_path / "models"
    empty.mkdir()
    code, checks = doctor("--no-devices", options=("--models-dir", str(empty)))
    assert code == 1
    stt = checks["models.whisper-tiny.en"]
    assert stt["status"] == "fail" and "missing" in stt["detail"]
    assert stt["fix"] == f"appliance-cli --models-dir {empty} models fetch --name whisper-tiny.en"
    assert all(checks[name]["status"] == "skip" for name in ENGINES)


def test_a_corrupted_model_is_named_and_its_engine_not_loaded(tmp_path: Path) -> None:
    good = Models()
    spec = good.spec("silero_vad")
    copy = tmp_path / "models"
    for other in good.specs.values():  # the other models, linked: only the VAD is broken
        if good.store.path(other).is_file() and other.name != "silero_vad":
            (copy / other.file).parent.mkdir(parents=True, exist_ok=True)
            (copy / other.file).symlink_to(good.store.path(other))
    (copy / spec.file).parent.mkdir(parents=True, exist_ok=True)
    data = good.store.path(spec).read_bytes()
    (copy / spec.file).write_bytes(data[: len(data) // 2])
    code, checks = doctor("--no-devices", options=("--models-dir", str(copy)))
    assert code == 1
    vad = checks["models.silero_vad"]
    assert vad["status"] == "fail" and "corrupted" in vad["detail"] and str(copy / spec.file) in vad["detail"]
    assert "models fetch --name silero_vad" in vad["fix"]
    assert checks["engine.vad"]["status"] == "skip"
    assert checks["models.whisper-tiny.en"]["status"] == "ok"
    assert checks["engine.stt"]["status"] == "ok"


def test_the_text_report_is_one_line_per_check_with_the_fix(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", "--models-dir", str(tmp_path), "doctor", "--no-devices", "--no-engines"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 1
    line = next(line for line in proc.stdout.splitlines() if "models.silero_vad" in line)
    assert line.startswith("FAIL") and "-> fix: appliance-cli" in line and "models fetch --name silero_vad" in line
    assert "failures" in proc.stdout.splitlines()[-1]
