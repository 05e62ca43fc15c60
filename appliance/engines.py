"""Building the engines from the models directory: every file verified before a native library sees it, and
every STT, LLM and TTS engine run once on a known input before it is handed out.

The verification is a sha256 computed once per change of the file's size or mtime; bytes that rot under both
(a failing SD card) load, and an engine on them writes "!!!!" or silence. The run at load turns that into a
load failure naming the file and the fix, instead of a daemon that starts and never answers.

Callers get the stage interfaces (``VAD``, ``TurnDetector``, ``WakeDetector``, ``STT``, ``LLM``, ``TTS``); the
local engine modules are imported only when an engine is built, so reading or checking the config loads no native
library.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from appliance.errors import ConfigError, ModelError
from appliance.llm.base import LLM
from appliance.llm.settings import LlamaSettings
from appliance.models.manifest import ModelSpec, load_manifest
from appliance.models.store import ModelStore
from appliance.stt.base import STT
from appliance.stt.whispercpp import WhisperSettings
from appliance.tts.base import TTS
from appliance.tts.piper import PiperSettings
from appliance.turn.base import TurnDetector, TurnSettings
from appliance.vad.base import VAD, VADSettings
from appliance.wake.base import WakeDetector, WakeSettings

DEFAULT_WAKE_WORDS = ("hey_jarvis",)
DEFAULT_STT = "whisper-tiny.en"
DEFAULT_LLM = "qwen2.5-coder-1.5b-instruct"
DEFAULT_TTS = "piper-en_US-joe-medium"
DEFAULT_VAD = "silero_vad"
DEFAULT_TURN = "smart-turn-v3.2"

S = TypeVar("S")


class Checked(Protocol):
    """An engine that can tell whether it works: run on a known input, what is wrong with its output."""

    def check_output(self) -> str | None: ...
    def close(self) -> None: ...


E = TypeVar("E", bound=Checked)


def engine_settings(cls: type[S], section: Any) -> S:
    """An engine's settings from the config section's fields of the same names (checked by the settings)."""
    names = [f.name for f in dataclasses.fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: getattr(section, name) for name in names})


@dataclass(frozen=True)
class EngineChoice:
    """Which models to load, by manifest name, with each stage's settings."""

    wake_words: tuple[str, ...] = DEFAULT_WAKE_WORDS
    stt: str = DEFAULT_STT
    llm: str = DEFAULT_LLM
    tts: str = DEFAULT_TTS
    vad: str = DEFAULT_VAD
    turn: str = DEFAULT_TURN
    wake: WakeSettings = field(default_factory=WakeSettings)
    vad_settings: VADSettings = field(default_factory=VADSettings)
    turn_settings: TurnSettings = field(default_factory=TurnSettings)
    whisper: WhisperSettings = field(default_factory=WhisperSettings)
    llama: LlamaSettings = field(default_factory=LlamaSettings)
    piper: PiperSettings = field(default_factory=PiperSettings)


class Models:
    """The manifest and the store together: model name -> verified path, and the engines built on them."""

    def __init__(self, root: Path | None = None, manifest: Path | None = None) -> None:
        self.store = ModelStore(root)
        self.specs = load_manifest(manifest)
        self.load_seconds: dict[str, float] = {}

    def spec(self, name: str, role: str | None = None) -> ModelSpec:
        spec = self.specs.get(name)
        if spec is None:
            raise ConfigError(f"unknown model {name!r}; `appliance-cli models list` shows the names")
        if role and not spec.role.startswith(role):
            raise ConfigError(f"model {name!r} is a {spec.role} model, not {role}")
        return spec

    def path(self, name: str, role: str | None = None) -> Path:
        return self.store.require(self.spec(name, role))

    def _timed(self, key: str, start: float) -> None:
        self.load_seconds[key] = time.perf_counter() - start

    def _checked(self, engine: E, name: str) -> E:
        """``engine``, if its output on a known input could come from a working model; else it is closed, the
        file's stamp dropped (the next load hashes it again), and a one-line ``ModelError`` names the file and
        the fix."""
        problem = engine.check_output()
        if problem is None:
            return engine
        engine.close()
        spec = self.spec(name)
        self.store.forget_verified(spec)
        problem = " ".join(problem.split())  # one line, even for a native library's multi-line message
        problem = problem if len(problem) <= 200 else problem[:199] + "…"
        raise ModelError(
            f"model file {self.store.path(spec)} does not work: {problem}; run `appliance-cli models verify "
            f"--name {name}` and `appliance-cli models fetch --name {name} --force` to replace it"
        )

    def wake(self, choice: EngineChoice) -> WakeDetector:
        from appliance.wake.openwakeword import OpenWakeWordDetector

        start = time.perf_counter()
        words = {w: self.path(w, "wake") for w in choice.wake_words}
        detector = OpenWakeWordDetector(self.path("oww_melspectrogram"), self.path("oww_embedding"), words, choice.wake)
        self._timed("wake", start)
        return detector

    def vad(self, choice: EngineChoice) -> VAD:
        from appliance.vad.silero import SileroVAD

        start = time.perf_counter()
        vad = SileroVAD(self.path(choice.vad, "vad"), choice.vad_settings)
        self._timed("vad", start)
        return vad

    def turn_detector(self, choice: EngineChoice) -> TurnDetector:
        from appliance.turn.smart_turn import SmartTurn

        start = time.perf_counter()
        detector = SmartTurn(self.path(choice.turn, "turn"), choice.turn_settings)
        self._timed("turn", start)
        return detector

    def stt(self, choice: EngineChoice) -> STT:
        from appliance.stt.whispercpp import WhisperCppSTT

        start = time.perf_counter()
        stt = self._checked(WhisperCppSTT(self.path(choice.stt, "stt"), choice.whisper), choice.stt)
        self._timed("stt", start)
        return stt

    def llm(self, choice: EngineChoice) -> LLM:
        from appliance.llm.llamacpp import LlamaCppLLM

        start = time.perf_counter()
        llm = self._checked(LlamaCppLLM(self.path(choice.llm, "llm"), choice.llama), choice.llm)
        self._timed("llm", start)
        return llm

    def tts(self, choice: EngineChoice) -> TTS:
        from appliance.tts.piper import PiperTTS

        start = time.perf_counter()
        tts = self._checked(
            PiperTTS(self.path(choice.tts, "tts"), self.path(f"{choice.tts}-config", "tts"), choice.piper), choice.tts
        )
        self._timed("tts", start)
        return tts
