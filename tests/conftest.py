"""Shared fixtures: the real default models, real recordings, and synthetic wake phrases.

Recordings: the Debian package pocketsphinx-testdata (LibriVox readings with transcripts, and the
short "go forward ten meters" / "go somewhere and do something" commands) - real human speech.
Wake phrases are synthesized with the Piper voice at test time: they are SYNTHETIC speech.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.resample import resample
from appliance.audio.wav import read_audio
from appliance.bench import DEFAULT_CORPUS, librivox_clips
from appliance.engines import EngineChoice, Models
from appliance.rig.sound_server import MicFeeder, MonitorRecorder, VirtualSoundServer
from appliance.tts.piper import PiperSettings
from tests.helpers import ALL_WAKE_WORDS


@pytest.fixture(scope="session", autouse=True)
def test_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every command the tests start reads this config (via $APPLIANCE_CONFIG), never the machine's own
    (/etc/appliance, ~/.config/appliance): state in a temporary directory, no conversation kept."""
    root = tmp_path_factory.mktemp("config")
    path = root / "config.toml"
    path.write_text(f'[service]\nstate_dir = "{root / "state"}"\n\n[agent]\nkeep_history = false\n')
    saved = os.environ.get("APPLIANCE_CONFIG")
    os.environ["APPLIANCE_CONFIG"] = str(path)
    yield path
    if saved is None:
        os.environ.pop("APPLIANCE_CONFIG", None)
    else:
        os.environ["APPLIANCE_CONFIG"] = saved


@pytest.fixture(scope="session")
def corpus() -> Path:
    if not (DEFAULT_CORPUS / "librivox").is_dir():
        pytest.fail("pocketsphinx-testdata is not installed: run ./scripts/install --test")
    return DEFAULT_CORPUS


@pytest.fixture(scope="session")
def librivox(corpus: Path) -> list[tuple[AudioFrame, str]]:
    return [(read_audio(p), ref) for p, ref in librivox_clips(corpus)]


@pytest.fixture(scope="session")
def go_forward(corpus: Path) -> AudioFrame:
    """Real speech: 'go forward ten meters' (2.8 s)."""
    return read_audio(corpus / "goforward.raw")


@pytest.fixture(scope="session")
def go_somewhere(corpus: Path) -> AudioFrame:
    """Real speech: 'go somewhere and do something' (3.0 s)."""
    return read_audio(corpus / "something.raw")


@pytest.fixture(scope="session")
def models() -> Models:
    return Models()


def _engine_fixture(load: Callable[[Models], Any]) -> Any:
    """A session-wide engine, loaded once from the real models and closed at the end."""

    @pytest.fixture(scope="session")
    def fixture(models: Models) -> Iterator[Any]:
        engine = load(models)
        yield engine
        engine.close()

    return fixture


stt = _engine_fixture(lambda m: m.stt(EngineChoice()))
vad = _engine_fixture(lambda m: m.vad(EngineChoice()))
wake = _engine_fixture(lambda m: m.wake(EngineChoice(wake_words=ALL_WAKE_WORDS)))
jarvis = _engine_fixture(lambda m: m.wake(EngineChoice()))
llm = _engine_fixture(lambda m: m.llm(EngineChoice()))
tts = _engine_fixture(lambda m: m.tts(EngineChoice()))
turn_detector = _engine_fixture(lambda m: m.turn_detector(EngineChoice()))


@pytest.fixture(scope="session")
def synth(models: Models) -> Iterator[Callable[[str], AudioFrame]]:
    """SYNTHETIC speech at 16 kHz from the Piper voice, without its random variation: the same words give the
    same audio in every run, so a test that passes once passes every time."""
    voice = models.tts(EngineChoice(piper=PiperSettings(noise_scale=0.0, noise_w=0.0)))
    cache: dict[str, AudioFrame] = {}

    def make(text: str) -> AudioFrame:
        if text not in cache:
            cache[text] = resample(voice.synthesize_sync(text), SAMPLE_RATE)
        return cache[text]

    yield make
    voice.close()


@pytest.fixture(scope="module")
def sound_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VirtualSoundServer]:
    """A private PulseAudio server (virtual microphone and speaker), one per test module."""
    with VirtualSoundServer(tmp_path_factory.mktemp("pulse")) as server:
        yield server


@pytest.fixture(scope="module")
def mic(sound_server: VirtualSoundServer) -> Iterator[MicFeeder]:
    """The virtual microphone, fed in real time (silence between clips)."""
    feeder = MicFeeder(sound_server.fifo).start()
    yield feeder
    feeder.stop()


@pytest.fixture(scope="module")
def speaker(sound_server: VirtualSoundServer) -> Iterator[MonitorRecorder]:
    """What the virtual speaker plays, recorded from its monitor."""
    recorder = MonitorRecorder(sound_server.env)
    yield recorder
    recorder.stop()


@pytest.fixture(scope="module")
def pulse(sound_server: VirtualSoundServer) -> Iterator[VirtualSoundServer]:
    """This process talks to the private server (PortAudio's ALSA 'pulse' device reads PULSE_SERVER)."""
    from appliance.audio.devices import refresh_devices

    saved = {k: os.environ.get(k) for k in ("PULSE_SERVER", "XDG_RUNTIME_DIR")}
    os.environ["PULSE_SERVER"] = sound_server.env["PULSE_SERVER"]
    os.environ["XDG_RUNTIME_DIR"] = sound_server.env["XDG_RUNTIME_DIR"]
    refresh_devices()
    yield sound_server
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
