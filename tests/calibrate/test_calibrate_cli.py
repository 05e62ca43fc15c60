"""``appliance-cli calibrate`` end to end: a subprocess against a real PulseAudio server with virtual devices.

The microphone is fed in real time. Room sound: white noise (SYNTHETIC) for the quiet and the noisy room;
for the room with people talking in the background, a babble of four REAL LibriVox readings mixed together.
The sentence spoken during the speech phase is REAL recorded speech ("go forward ten meters").
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.audio.frame import AudioFrame
from appliance.rig.sound_server import VirtualSoundServer
from tests.calibrate.helpers import QUIET_STD, Room, Run, babble, calibrate, white_room

DURATION = "3"
NOISY_STD = 600  # about -35 dBFS
BABBLE_DBFS = -45.0


@pytest.fixture(scope="module")
def rooms(
    sound_server: VirtualSoundServer, go_forward: AudioFrame, librivox: list[tuple[AudioFrame, str]], tmp_path_factory
) -> Iterator[tuple[Path, dict[str, Run]]]:
    """One config file calibrated three times: a quiet room, a noisy one, one with people talking in it."""
    config = tmp_path_factory.mktemp("calibrate") / "config.toml"
    config.write_text("# my appliance\n[agent]\nlistening_timeout = 6.0\n")
    runs: dict[str, Run] = {}
    backgrounds = {
        "quiet": lambda: white_room(sound_server.fifo, QUIET_STD),
        "noisy": lambda: white_room(sound_server.fifo, NOISY_STD),
        "babble": lambda: Room(sound_server.fifo, babble([a for a, _ in librivox], BABBLE_DBFS)),
    }
    for name, make in backgrounds.items():
        room = make().start()
        try:
            extra = () if name == "quiet" else ("--no-speaker",)
            runs[name] = calibrate(sound_server, config, room, go_forward, "--duration", DURATION, *extra)
        finally:
            room.stop()
        assert runs[name].returncode == 0, f"{name}: {runs[name].stderr[-2000:]}"
    yield config, runs


def thresholds(run: Run) -> tuple[float, float, float]:
    c = run.config
    return c["vad"]["threshold"], c["wake"]["threshold"], c["agent"]["wake_gate_threshold"]


def test_calibration_writes_the_thresholds_and_the_measurements(rooms: tuple[Path, dict[str, Run]]) -> None:
    _, runs = rooms
    quiet = runs["quiet"]
    measured = quiet.config["calibration"]
    assert -66 < measured["noise_floor_dbfs"] < -56
    assert -40 < measured["speech_dbfs"] < -15 and measured["snr_db"] > 20
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", measured["calibrated_at"])
    assert quiet.config["agent"]["listening_timeout"] == 6.0  # the rest of the file is kept
    assert "echo_delay" not in measured  # the virtual speaker is not heard by the virtual microphone
    assert "echo: no echo path heard" in quiet.stdout
    assert "no echo heard; playing the sweep once more" in quiet.stdout  # "no echo" held for two sweeps
    for key in ("vad.threshold", "wake.threshold", "agent.wake_gate_threshold"):
        assert quiet.line(key)  # every value is shown with its reason
    assert "room sound reaches" in quiet.line("vad.threshold")
    assert "false triggers in 3 s of room sound" in quiet.stdout


def test_each_write_keeps_the_old_file_as_a_backup(rooms: tuple[Path, dict[str, Run]]) -> None:
    config, runs = rooms
    backups = sorted(config.parent.glob("config.toml.*.bak"))
    assert backups, "no backup of the old config"
    assert any(b.read_text().startswith("# my appliance") for b in backups)
    assert f"wrote {config} (the old file is kept as" in runs["noisy"].stdout


def test_a_noisier_room_never_gets_lower_thresholds(rooms: tuple[Path, dict[str, Run]]) -> None:
    _, runs = rooms
    quiet, noisy = runs["quiet"], runs["noisy"]
    assert noisy.config["calibration"]["noise_floor_dbfs"] > quiet.config["calibration"]["noise_floor_dbfs"] + 20
    for was, now in zip(thresholds(quiet), thresholds(noisy), strict=True):
        assert now >= was
    assert "warning: your voice is only" in noisy.stdout  # go forward at about -28 dBFS over -35 dBFS of noise


def test_people_talking_in_the_room_raise_the_vad_threshold(rooms: tuple[Path, dict[str, Run]]) -> None:
    _, runs = rooms
    quiet, busy = thresholds(runs["quiet"]), thresholds(runs["babble"])
    assert busy[0] > 0.7 > quiet[0], runs["babble"].stdout
    assert busy[1] >= quiet[1] and busy[2] >= quiet[2]
    assert "vad.threshold 0.50 ->" in runs["babble"].stdout


def test_a_missing_microphone_is_one_line_and_nothing_is_written(
    sound_server: VirtualSoundServer, go_forward: AudioFrame, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[vad]\nthreshold = 0.6\n")
    run = calibrate(sound_server, config, None, go_forward, "--input-device", "usb-mic-9")
    assert run.returncode == 2
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no input sound device matches 'usb-mic-9'" in errors[0]
    assert config.read_text() == "[vad]\nthreshold = 0.6\n"
    assert not list(tmp_path.glob("*.bak"))


def test_silence_when_asked_to_speak_is_an_error_and_nothing_is_written(
    sound_server: VirtualSoundServer, go_forward: AudioFrame, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    room = white_room(sound_server.fifo, QUIET_STD).start()
    try:
        run = calibrate(sound_server, config, None, go_forward, "--duration", "1", "--no-speaker")
    finally:
        room.stop()
    assert run.returncode == 2
    assert "error: no voice heard above the room" in run.stderr
    assert not config.exists()


def test_asked_interactively_the_user_can_decline_to_write(
    sound_server: VirtualSoundServer, go_forward: AudioFrame, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[vad]\nthreshold = 0.6\n")
    room = white_room(sound_server.fifo, QUIET_STD).start()
    try:
        # Enter for the room, Enter for the sentence, then "n" to the question whether to write
        run = calibrate(sound_server, config, room, go_forward, "--duration", "2", "--no-speaker", answers="\n\nn\n")
    finally:
        room.stop()
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Press Enter to start" in run.stdout and "? [Y/n]" in run.stdout
    assert "vad.threshold 0.60 -> 0.50" in run.stdout
    assert run.stdout.rstrip().endswith("nothing written")
    assert config.read_text() == "[vad]\nthreshold = 0.6\n"
