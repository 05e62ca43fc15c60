"""The configuration: one frozen dataclass per subsystem, each a TOML table of the same name.

The stage sections are the user's contract, not any engine's: ``[llm]`` names a model and the settings of the
local engine, and keeps those names whichever engine serves the stage. Each section takes its defaults from the
local engine's settings and checks its values by building those settings (``engine_settings``), so a default and
a range are each declared in one place; ``engines.py`` hands the settings to the engines. Nothing here imports a
native inference library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from appliance.agent.agent import DEFAULT_INSTRUCTIONS
from appliance.agent.options import SessionOptions
from appliance.config.cloud import (
    STAGE_PROVIDERS,
    CloudConfig,
    PrivacyConfig,
    check_providers,
    unconfigured,
)
from appliance.config.livekit import LiveKitConfig
from appliance.config.service import (
    LogConfig,
    MetricsConfig,
    ServiceConfig,
)
from appliance.engines import (
    DEFAULT_LLM,
    DEFAULT_STT,
    DEFAULT_TTS,
    DEFAULT_TURN,
    DEFAULT_VAD,
    DEFAULT_WAKE_WORDS,
    EngineChoice,
    engine_settings,
)
from appliance.errors import ConfigError
from appliance.llm.settings import LlamaSettings
from appliance.stt.whispercpp import WhisperSettings
from appliance.tts.piper import PiperSettings
from appliance.turn.base import TurnSettings
from appliance.vad.base import VADSettings
from appliance.wake.base import WakeSettings

TURN_DETECTION = ("model", "silence")
ECHO_CANCELLATION = ("auto", "on", "off")


@dataclass(frozen=True)
class AudioConfig:
    input_device: str | None = None
    """Microphone by name (or part of it) or PortAudio index; unset: the system's default input."""
    output_device: str | None = None
    """Speaker by name (or part of it) or index; unset: the system's default output."""
    speaker_rest_after: float = 3.0
    """Seconds of silence after which the speaker's stream is closed (the next sound opens it again within a
    few ms); 0: it stays open."""
    echo_cancellation: str = "auto"
    """Take the speaker's sound out of the microphone's: "on", "off", or "auto" (on when calibrate heard
    the speaker at the microphone)."""
    noise_suppression: bool = False
    """WebRTC's noise suppression on the cleaned microphone (with echo cancellation only)."""

    def __post_init__(self) -> None:
        if self.echo_cancellation not in ECHO_CANCELLATION:
            raise ConfigError(
                f"audio.echo_cancellation = {self.echo_cancellation!r} is not known;"
                f" use one of {', '.join(ECHO_CANCELLATION)}"
            )
        if not (self.speaker_rest_after == 0 or 0.5 <= self.speaker_rest_after <= 3600):
            raise ConfigError(
                f"audio.speaker_rest_after = {self.speaker_rest_after} is out of range; use 0 (never) or 0.5 to 3600 s"
            )


@dataclass(frozen=True)
class WakeConfig:
    threshold: float = WakeSettings.threshold
    """Score at or above which a chunk counts as the wake word."""
    patience: int = WakeSettings.patience
    """Consecutive chunks at or above the threshold needed to fire."""
    refractory: float = WakeSettings.refractory
    """Seconds after a detection during which the same word does not fire again."""
    words: tuple[str, ...] = DEFAULT_WAKE_WORDS
    """Wake-word models by manifest name; any of them starts a conversation."""

    def __post_init__(self) -> None:
        if not self.words:
            raise ConfigError('wake.words is empty; name at least one wake word, e.g. ["hey_jarvis"]')
        engine_settings(WakeSettings, self)


@dataclass(frozen=True)
class VADConfig:
    threshold: float = VADSettings.threshold
    """Probability at or above which a window is speech."""
    min_speech_duration: float = VADSettings.min_speech_duration
    """Seconds of speech needed before the start of speech counts."""
    min_silence_duration: float = VADSettings.min_silence_duration
    """Seconds of silence that end an utterance (the agent's own endpointing is agent.min_endpointing_delay)."""
    prefix_padding: float = VADSettings.prefix_padding
    """Seconds of audio kept before the start, so the first syllable is not lost."""
    max_speech_duration: float = VADSettings.max_speech_duration
    """An utterance longer than this is cut and ended."""
    energy_floor: float = VADSettings.energy_floor
    """dBFS below which audio is silence without running the model (saves CPU while waiting); -100: off."""
    model: str = DEFAULT_VAD

    def __post_init__(self) -> None:
        engine_settings(VADSettings, self)


@dataclass(frozen=True)
class TurnConfig:
    threshold: float = TurnSettings.threshold
    """Probability at or above which the turn detector finds the user finished (agent.turn_detection = "model")."""
    model: str = DEFAULT_TURN

    def __post_init__(self) -> None:
        engine_settings(TurnSettings, self)


@dataclass(frozen=True)
class STTConfig:
    language: str = WhisperSettings.language
    threads: int = WhisperSettings.threads
    """Worker threads; 0 takes the number of CPU cores (at most 4)."""
    trim_audio_ctx: bool = WhisperSettings.trim_audio_ctx
    """Encode only as many positions as the utterance needs instead of the padded 30 s window."""
    audio_ctx_margin: int = WhisperSettings.audio_ctx_margin
    """Extra encoder positions beyond the utterance (5.1 s)."""
    timeout: float = WhisperSettings.timeout
    """Seconds a recognition may take before it is abandoned."""
    model: str = DEFAULT_STT
    providers: tuple[str, ...] = ("local",)
    """Who transcribes, tried in this order: local, openai, deepgram."""
    attempt_timeout: float = 1.5
    """Seconds to the final transcript before the next provider is asked."""

    def __post_init__(self) -> None:
        engine_settings(WhisperSettings, self)
        check_providers("stt", self.providers, self.attempt_timeout)


@dataclass(frozen=True)
class LLMConfig:
    n_ctx: int = LlamaSettings.n_ctx
    threads: int = LlamaSettings.threads
    """0 takes the number of CPU cores."""
    max_tokens: int = LlamaSettings.max_tokens
    """Upper bound of a reply, in tokens: a spoken answer is short."""
    temperature: float = LlamaSettings.temperature
    top_p: float = LlamaSettings.top_p
    repeat_penalty: float = LlamaSettings.repeat_penalty
    first_token_timeout: float = LlamaSettings.first_token_timeout
    """Seconds to wait for the first token before the request fails."""
    token_timeout: float = LlamaSettings.token_timeout
    """Seconds to wait between two tokens before the request fails."""
    model: str = DEFAULT_LLM
    providers: tuple[str, ...] = ("local",)
    """Who answers, tried in this order: local, openai."""
    attempt_timeout: float = 1.0
    """Seconds to the first token before the next provider is asked."""

    def __post_init__(self) -> None:
        engine_settings(LlamaSettings, self)
        check_providers("llm", self.providers, self.attempt_timeout)


@dataclass(frozen=True)
class TTSConfig:
    length_scale: float = PiperSettings.length_scale
    """Speaking rate: below 1 is faster."""
    volume: float = PiperSettings.volume
    """Gain applied after peak normalisation."""
    timeout: float = PiperSettings.timeout
    """Seconds one sentence may take to synthesize."""
    noise_scale: float | None = PiperSettings.noise_scale
    """Variation of the voice (unset: the voice's own)."""
    noise_w: float | None = PiperSettings.noise_w
    """Variation of the phoneme lengths (unset: the voice's own)."""
    voice: str = DEFAULT_TTS
    providers: tuple[str, ...] = ("local",)
    """Who speaks, tried in this order: local, openai, elevenlabs."""
    attempt_timeout: float = 1.0
    """Seconds to the first audio before the next provider is asked."""

    def __post_init__(self) -> None:
        engine_settings(PiperSettings, self)
        check_providers("tts", self.providers, self.attempt_timeout)


@dataclass(frozen=True)
class AgentConfig(SessionOptions):
    instructions: str = DEFAULT_INSTRUCTIONS
    """The system prompt."""
    keep_history: bool = True
    """Record the conversation in the state directory (SQLite), so a restart within ``history_ttl`` carries on
    with it and ``appliance-cli history`` shows it."""
    history_ttl: float = 300.0
    """Seconds a saved conversation stays worth restoring."""
    intents: bool = True
    """Answer "stop", "cancel", the volume, the time and the date, timers and "repeat that" on the device
    without the LLM (timers are kept with the conversation record and ring across a restart)."""
    history_retention_days: float = 30.0
    """Days the conversation record keeps a conversation (``appliance-cli history``); 0: only the one under
    way. keep_history = false keeps no record at all."""
    turn_detection: str = "model"
    """How the end of the user's turn is found. "model": the turn detector ([turn]) judges each pause, so a
    finished sentence ends after complete_endpointing_delay and an unfinished one waits up to
    max_endpointing_delay. "silence": every turn ends after min_endpointing_delay of silence."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.turn_detection not in TURN_DETECTION:
            raise ConfigError(
                f"agent.turn_detection = {self.turn_detection!r} is not known; use one of {', '.join(TURN_DETECTION)}"
            )
        if not self.instructions.strip():
            raise ConfigError("agent.instructions is empty; give the assistant a system prompt")
        if self.history_ttl < 0:
            raise ConfigError("agent.history_ttl must not be negative")
        if self.history_retention_days < 0:
            raise ConfigError(
                "agent.history_retention_days must not be negative (0 keeps only the conversation under way)"
            )


@dataclass(frozen=True)
class ModelsConfig:
    dir: str | None = None
    """The models directory (unset: $APPLIANCE_MODELS_DIR, else the user's data dir)."""
    hub_token: str | None = field(default=None, repr=False, metadata={"secret": True, "env": "HF_TOKEN"})
    """Bearer token for model downloads from a hub that needs one (gated models). Secret: prefer the
    ``HF_TOKEN`` environment variable or a systemd credential named ``hub_token``."""


@dataclass(frozen=True)
class CalibrationConfig:
    """What ``appliance-cli calibrate`` measured last (written by it; read by ``doctor`` and ``status``)."""

    calibrated_at: str | None = None
    noise_floor_dbfs: float | None = None
    speech_dbfs: float | None = None
    snr_db: float | None = None
    echo_delay: float | None = None
    """Seconds from playing a sound to hearing it back at the microphone."""
    echo_level_db: float | None = None
    """Level of the speaker heard at the microphone, relative to what was played."""
    erle_db: float | None = None
    """How much echo cancellation took out of that echo (echo return loss enhancement)."""


PROMPT_RESERVE = 512
"""Tokens of the context kept for what the history budget does not count: the tools' definitions."""


@dataclass(frozen=True)
class Config:
    audio: AudioConfig = field(default_factory=AudioConfig)
    wake: WakeConfig = field(default_factory=WakeConfig)
    vad: VADConfig = field(default_factory=VADConfig)
    turn: TurnConfig = field(default_factory=TurnConfig)
    stt: STTConfig = field(default_factory=STTConfig)
    llm: LLMConfig = field(default_factory=LLMConfig)
    tts: TTSConfig = field(default_factory=TTSConfig)
    agent: AgentConfig = field(default_factory=AgentConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    log: LogConfig = field(default_factory=LogConfig)
    service: ServiceConfig = field(default_factory=ServiceConfig)
    models: ModelsConfig = field(default_factory=ModelsConfig)
    cloud: CloudConfig = field(default_factory=CloudConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    livekit: LiveKitConfig = field(default_factory=LiveKitConfig)
    source: Path | None = field(default=None, compare=False)
    """The file it was read from (None: built-in defaults)."""

    @property
    def echo_cancellation(self) -> bool:
        """Whether the microphone's input goes through echo cancellation (``audio.echo_cancellation``)."""
        mode = self.audio.echo_cancellation
        return mode == "on" or (mode == "auto" and self.calibration.echo_level_db is not None)

    def __post_init__(self) -> None:
        room = self.llm.n_ctx - self.llm.max_tokens - PROMPT_RESERVE
        if self.agent.history_tokens > room:
            raise ConfigError(
                f"agent.history_tokens = {self.agent.history_tokens} does not fit in llm.n_ctx = {self.llm.n_ctx} "
                f"with a reply of llm.max_tokens = {self.llm.max_tokens} and the tools; use at most {max(room, 0)} "
                "or raise llm.n_ctx"
            )
        if self.privacy.allow_cloud:
            return
        for stage in ("stt", "llm", "tts"):
            cloud = [p for p in getattr(self, stage).providers if p != "local"]
            if cloud:
                raise ConfigError(
                    f"{stage}.providers names {cloud[0]!r} but privacy.allow_cloud is false; set "
                    f"[privacy] allow_cloud = true to let it send data off the device, or remove {cloud[0]!r}"
                )

    def providers(self, stage: str) -> tuple[str, ...]:
        """The providers of ``stage`` (stt, llm, tts) in the order they are tried."""
        providers: tuple[str, ...] = getattr(self, stage).providers
        return providers

    def unconfigured(self) -> str | None:
        """The first cloud provider a stage names whose config lacks a key or value, as one line saying where
        to put it (None: every named provider can be asked)."""
        return unconfigured(self.cloud, {stage: self.providers(stage) for stage in STAGE_PROVIDERS}, self.source)

    def engines(self) -> EngineChoice:
        """Which models to load, with each stage's settings."""
        return EngineChoice(
            wake_words=self.wake.words,
            stt=self.stt.model,
            llm=self.llm.model,
            tts=self.tts.voice,
            vad=self.vad.model,
            wake=engine_settings(WakeSettings, self.wake),
            vad_settings=engine_settings(VADSettings, self.vad),
            turn=self.turn.model,
            turn_settings=engine_settings(TurnSettings, self.turn),
            whisper=engine_settings(WhisperSettings, self.stt),
            llama=engine_settings(LlamaSettings, self.llm),
            piper=engine_settings(PiperSettings, self.tts),
        )


SECTIONS: dict[str, type] = {
    "audio": AudioConfig,
    "wake": WakeConfig,
    "vad": VADConfig,
    "turn": TurnConfig,
    "stt": STTConfig,
    "llm": LLMConfig,
    "tts": TTSConfig,
    "agent": AgentConfig,
    "metrics": MetricsConfig,
    "log": LogConfig,
    "service": ServiceConfig,
    "models": ModelsConfig,
    "cloud": CloudConfig,
    "privacy": PrivacyConfig,
    "calibration": CalibrationConfig,
    "livekit": LiveKitConfig,
}
