"""The cloud providers' settings (``[cloud.openai]``, ``[cloud.deepgram]``, ``[cloud.elevenlabs]``), the
``[privacy]`` switch that lets any of them be used, and the checks of each stage's ``providers`` list."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import ConfigError

STAGE_PROVIDERS = {
    "stt": ("local", "openai", "deepgram"),
    "llm": ("local", "openai"),
    "tts": ("local", "openai", "elevenlabs"),
}
"""Who can serve each stage: the local engine, or a cloud provider configured under ``[cloud.NAME]``."""


def check_providers(stage: str, providers: tuple[str, ...], attempt_timeout: float) -> None:
    known = STAGE_PROVIDERS[stage]
    if not providers:
        raise ConfigError(f'{stage}.providers is empty; name at least one, e.g. ["local"]')
    for name in providers:
        if name not in known:
            raise ConfigError(f"{stage}.providers: unknown provider {name!r}; use any of {', '.join(known)}")
    if len(set(providers)) != len(providers):
        raise ConfigError(f"{stage}.providers names a provider twice: {list(providers)}; name each once")
    if not 0.1 <= attempt_timeout <= 30:
        raise ConfigError(f"{stage}.attempt_timeout {attempt_timeout} is out of range; use 0.1 to 30 seconds")


def _check_url(key: str, url: str, schemes: tuple[str, ...]) -> None:
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in schemes or not rest:
        raise ConfigError(f"{key} = {url!r} is not a URL; use {schemes[-1]}://host[:port]/path")


@dataclass(frozen=True)
class OpenAICloudConfig:
    """Any OpenAI-compatible server: OpenAI, Groq, or a llama.cpp or vLLM server on the LAN."""

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    """Chat model (``llm.providers``)."""
    stt_model: str = "whisper-1"
    """Transcription model (``stt.providers``)."""
    tts_model: str = "tts-1"
    """Speech model (``tts.providers``)."""
    voice: str = "alloy"
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={"secret": True, "env": "OPENAI_API_KEY", "credential": "openai_api_key"},
    )
    """Secret: prefer ``OPENAI_API_KEY`` or the systemd credential ``openai_api_key``. A server on the LAN
    may need none."""

    def __post_init__(self) -> None:
        _check_url("cloud.openai.base_url", self.base_url, ("http", "https"))

    def missing(self) -> str | None:
        """The key a request needs and the config lacks (the official API always wants a key)."""
        official = self.base_url.startswith("https://api.openai.com")
        return "api_key" if official and not self.api_key else None


@dataclass(frozen=True)
class DeepgramCloudConfig:
    base_url: str = "wss://api.deepgram.com/v1/listen"
    model: str = "nova-3"
    endpointing_ms: int = 300
    """Milliseconds of silence after which Deepgram ends an utterance."""
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={"secret": True, "env": "DEEPGRAM_API_KEY", "credential": "deepgram_api_key"},
    )
    """Secret: prefer ``DEEPGRAM_API_KEY`` or the systemd credential ``deepgram_api_key``."""

    def __post_init__(self) -> None:
        _check_url("cloud.deepgram.base_url", self.base_url, ("ws", "wss"))
        if not 10 <= self.endpointing_ms <= 5000:
            raise ConfigError(f"cloud.deepgram.endpointing_ms {self.endpointing_ms} is out of range; use 10 to 5000")

    def missing(self) -> str | None:
        return None if self.api_key else "api_key"


@dataclass(frozen=True)
class ElevenLabsCloudConfig:
    base_url: str = "https://api.elevenlabs.io"
    voice_id: str = ""
    """The voice, by its id in the ElevenLabs voice library."""
    model: str = "eleven_flash_v2_5"
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={"secret": True, "env": "ELEVENLABS_API_KEY", "credential": "elevenlabs_api_key"},
    )
    """Secret: prefer ``ELEVENLABS_API_KEY`` or the systemd credential ``elevenlabs_api_key``."""

    def __post_init__(self) -> None:
        _check_url("cloud.elevenlabs.base_url", self.base_url, ("http", "https"))

    def missing(self) -> str | None:
        return "api_key" if not self.api_key else "voice_id" if not self.voice_id else None


@dataclass(frozen=True)
class CloudConfig:
    """How to reach each cloud provider; used only by a stage whose ``providers`` names it."""

    openai: OpenAICloudConfig = field(default_factory=OpenAICloudConfig)
    deepgram: DeepgramCloudConfig = field(default_factory=DeepgramCloudConfig)
    elevenlabs: ElevenLabsCloudConfig = field(default_factory=ElevenLabsCloudConfig)


@dataclass(frozen=True)
class PrivacyConfig:
    allow_cloud: bool = False
    """Let the stages send audio or text to the cloud providers they name. Off: nothing leaves the device."""


def unconfigured(cloud: CloudConfig, stages: Mapping[str, tuple[str, ...]], source: Path | None) -> str | None:
    """The first cloud provider a stage names whose section lacks a key or value, as one line saying where
    to put it (None: every named provider can be asked)."""
    for stage, providers in stages.items():
        for name in providers:
            if name == "local":
                continue
            section = getattr(cloud, name)
            missing = section.missing()
            if missing is None:
                continue
            key = f"cloud.{name}.{missing}"
            meta = next(f.metadata for f in dataclasses.fields(section) if f.name == missing)
            if meta.get("secret"):
                where = (
                    f"export {meta['env']}=... (or the systemd credential {meta['credential']}, "
                    f"LoadCredential={meta['credential']}:/path/to/file)"
                )
            else:
                where = f"set {missing} under [cloud.{name}] in {source or 'the config file'}"
            return f"{stage}.providers names {name!r} but {key} is not set; {where}"
    return None
