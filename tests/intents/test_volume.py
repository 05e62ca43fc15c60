"""The output volume: kept across restarts, stepped by 10, set on a real PulseAudio (a private server with a
null sink) when the machine has one, and a software gain when the tools fail or are missing."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from appliance.intents.volume import VOLUME_FILE, Backend, Mixer, playback_control
from appliance.rig.sound_server import VirtualSoundServer

HAS_PULSEAUDIO = all(shutil.which(tool) for tool in ("pulseaudio", "pactl", "parec"))


def software(state_dir: Path) -> Mixer:
    return Mixer(state_dir, pactl=None, amixer=None)


def sink_volume(env: dict[str, str]) -> str:
    out = subprocess.run(["pactl", "get-sink-volume", "@DEFAULT_SINK@"], env=env, capture_output=True, text=True)
    return out.stdout


def test_without_a_mixer_the_level_is_a_software_gain_stepped_by_10(tmp_path: Path) -> None:
    async def go() -> None:
        mixer = software(tmp_path)
        assert await mixer.restore() == 100  # nothing kept: as loud as before there was a volume
        assert mixer.backend is Backend.SOFTWARE and mixer.gain == 1.0
        assert await mixer.set(50) == 50
        assert mixer.gain == pytest.approx(0.125)  # -18 dB, as PulseAudio maps 50 %
        assert await mixer.up() == 60
        assert await mixer.down() == 50
        assert await mixer.down() == 40
        assert await mixer.set(150) == 100
        assert await mixer.up() == 100
        assert await mixer.set(-5) == 0 and mixer.gain == 0.0

    asyncio.run(go())


def test_the_level_is_kept_in_a_private_file_and_restored(tmp_path: Path) -> None:
    state = tmp_path / "state"

    async def before() -> None:
        mixer = software(state)
        await mixer.restore()
        await mixer.set(30)

    async def after() -> None:
        mixer = software(state)
        assert await mixer.restore() == 30
        assert mixer.gain == pytest.approx(0.027)

    asyncio.run(before())
    path = state / VOLUME_FILE
    assert json.loads(path.read_text())["level"] == 30
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in state.iterdir()] == [VOLUME_FILE]  # no temporary file left beside it
    asyncio.run(after())


def test_unmute_goes_back_to_the_level_before_the_mute_even_after_a_restart(tmp_path: Path) -> None:
    async def before() -> None:
        mixer = software(tmp_path)
        await mixer.restore()
        await mixer.set(70)
        await mixer.set(0)

    async def after() -> None:
        mixer = software(tmp_path)
        assert await mixer.restore() == 0
        assert await mixer.unmute() == 70
        assert await mixer.unmute() == 70  # not muted: nothing changes

    asyncio.run(before())
    asyncio.run(after())


def test_an_unreadable_kept_level_is_logged_and_not_used(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / VOLUME_FILE).write_text("{not json")

    async def go() -> None:
        mixer = software(tmp_path)
        assert await mixer.restore() == 100

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    assert [r.getMessage() for r in caplog.records] == ["volume: the kept level is unreadable, not used"]


def test_a_failing_sound_server_is_logged_once_and_the_software_gain_stands_in(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if shutil.which("pactl") is None:
        pytest.skip("pactl is not installed")
    env = {"PATH": os.environ["PATH"], "PULSE_SERVER": f"unix:{tmp_path / 'none' / 'native'}"}

    async def go() -> None:
        mixer = Mixer(tmp_path, amixer=None, env=env)
        await mixer.restore()
        await mixer.set(40)
        await mixer.up()
        assert mixer.backend is Backend.SOFTWARE
        assert mixer.level == 50 and mixer.gain == pytest.approx(0.125)

    with caplog.at_level(logging.WARNING):
        asyncio.run(go())
    failures = [r for r in caplog.records if r.getMessage().startswith("volume: the mixer failed")]
    assert len(failures) == 1
    assert "Connection refused" in failures[0].error  # type: ignore[attr-defined]


def test_a_hanging_tool_is_given_up_on_after_its_timeout(tmp_path: Path) -> None:
    hang = tmp_path / "pactl"
    hang.write_text("#!/bin/sh\nexec sleep 30\n")
    hang.chmod(0o755)

    async def go() -> None:
        mixer = Mixer(tmp_path, pactl=str(hang), amixer=None, timeout=0.05)
        await mixer.restore()
        start = time.monotonic()
        assert await mixer.set(20) == 20
        assert time.monotonic() - start < 1.0
        assert mixer.backend is Backend.SOFTWARE

    asyncio.run(go())


@pytest.mark.skipif(not HAS_PULSEAUDIO, reason="pulseaudio, pactl and parec are not installed")
def test_the_level_is_set_on_the_sound_server_and_applied_again_at_start(
    sound_server: VirtualSoundServer, tmp_path: Path
) -> None:
    env = sound_server.env

    async def first() -> None:
        mixer = Mixer(tmp_path, amixer=None, env=env)
        await mixer.restore()
        assert mixer.backend is Backend.PULSE and mixer.gain == 1.0
        assert await mixer.set(30) == 30
        assert "30%" in sink_volume(env)
        assert await mixer.up() == 40
        assert "40%" in sink_volume(env)

    async def after_restart() -> None:
        mixer = Mixer(tmp_path, amixer=None, env=env)
        assert await mixer.restore() == 40
        assert "40%" in sink_volume(env)

    asyncio.run(first())
    subprocess.run(["pactl", "set-sink-volume", "@DEFAULT_SINK@", "85%"], env=env, check=True)
    asyncio.run(after_restart())


@pytest.mark.skipif(not HAS_PULSEAUDIO, reason="pulseaudio, pactl and parec are not installed")
def test_with_nothing_kept_the_sound_servers_own_level_is_taken(
    sound_server: VirtualSoundServer, tmp_path: Path
) -> None:
    subprocess.run(["pactl", "set-sink-volume", "@DEFAULT_SINK@", "65%"], env=sound_server.env, check=True)

    async def go() -> None:
        mixer = Mixer(tmp_path, amixer=None, env=sound_server.env)
        assert await mixer.restore() == 65
        assert await mixer.down() == 55

    asyncio.run(go())


PI_HEADPHONES = """Simple mixer control 'PCM',0
  Capabilities: pvolume pvolume-joined pswitch pswitch-joined
  Playback channels: Mono
  Limits: Playback -10239 - 400
  Mono: Playback -2000 [77%] [-20.00dB] [on]
"""
USB_SPEAKER = """Simple mixer control 'Mic',0
  Capabilities: cvolume cvolume-joined cswitch cswitch-joined
  Capture channels: Mono
  Limits: Capture 0 - 35
  Mono: Capture 20 [57%] [3.00dB] [on]
Simple mixer control 'Speaker',0
  Capabilities: pvolume pswitch pswitch-joined
  Playback channels: Front Left - Front Right
  Limits: Playback 0 - 151
  Front Left: Playback 100 [66%] [-12.75dB] [on]
  Front Right: Playback 100 [66%] [-12.75dB] [on]
"""
WITH_MASTER = """Simple mixer control 'Headphone',0
  Capabilities: pvolume pswitch
  Front Left: Playback 87 [100%] [0.00dB] [on]
Simple mixer control 'Master',0
  Capabilities: pvolume pvolume-joined pswitch pswitch-joined
  Mono: Playback 40 [46%] [-35.25dB] [on]
Simple mixer control 'Capture',0
  Capabilities: cvolume cswitch
"""


def test_the_alsa_control_is_master_or_else_the_first_with_a_playback_volume() -> None:
    assert playback_control(PI_HEADPHONES) == "PCM"
    assert playback_control(USB_SPEAKER) == "Speaker"
    assert playback_control(WITH_MASTER) == "Master"
    assert playback_control("Simple mixer control 'Mic',0\n  Capabilities: cvolume\n") is None
    assert playback_control("") is None
