"""Each stage's engine as the config names it: the local engine alone (the default), or the named providers in
order behind the stage's fallback adapter, labelled by their config names (``local``, ``openai``...).

``check_chains`` runs before any model loads, so a provider that cannot be asked (no key, no ``cloud`` extra)
is one line at start rather than a failure at the first turn.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from appliance.config.cloud import STAGE_PROVIDERS
from appliance.errors import ConfigError
from appliance.llm.base import LLM
from appliance.providers.pool import AvailabilityChanged, ProviderPool
from appliance.providers.privacy import EgressLedger
from appliance.stt.base import STT
from appliance.tts.base import TTS

if TYPE_CHECKING:
    from appliance.config.schema import Config
    from appliance.engines import Models

CLOUD_MODULES = ("httpx", "httpx_sse", "websockets")
"""What the ``cloud`` extra installs."""


def uses_cloud(config: Config) -> bool:
    return any(name != "local" for stage in STAGE_PROVIDERS for name in config.providers(stage))


def check_chains(config: Config) -> None:
    """Every provider a stage names can be asked: configured, and its client installed."""
    line = config.unconfigured()
    if line:
        raise ConfigError(line)
    if uses_cloud(config):
        missing = [m for m in CLOUD_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            raise ConfigError(
                f"a stage names a cloud provider but {missing[0]} is not installed; "
                "run `./scripts/install --cloud` (or pip install 'appliance[cloud]')"
            )


def describe(config: Config) -> dict[str, str]:
    """{stage: "openai -> local"} for the start log and ``status``."""
    return {stage: " -> ".join(config.providers(stage)) for stage in STAGE_PROVIDERS}


class Stages:
    """The session's STT, LLM and TTS as the config chains them, with what they did: each fallback adapter's
    provider pool (outcomes, availability) and the ledger of what left the device."""

    def __init__(self, config: Config, models: Models) -> None:
        self.config = config
        self.ledger = EgressLedger()
        self.stt = build_stt(config, models, self.ledger)
        self.llm = build_llm(config, models, self.ledger)
        self.tts = build_tts(config, models, self.ledger)

    def pools(self) -> dict[str, ProviderPool[Any]]:
        """{stage: pool} for the stages behind a fallback adapter."""
        engines = {"stt": self.stt, "llm": self.llm, "tts": self.tts}
        return {
            stage: pool for stage, e in engines.items() if isinstance(pool := getattr(e, "pool", None), ProviderPool)
        }

    def on_availability_changed(self, callback: Callable[[AvailabilityChanged], None]) -> None:
        """``callback`` for every provider taken out of or brought back into any stage's rotation."""
        for pool in self.pools().values():
            pool.on_availability_changed(callback)

    def snapshot(self) -> dict[str, Any]:
        """For ``status``: each stage's chain, who is in rotation, the request outcomes, and the bytes sent."""
        stages: dict[str, Any] = {}
        for stage, chain in describe(self.config).items():
            stages[stage] = {"chain": chain}
        for stage, pool in self.pools().items():
            stages[stage]["available"] = {label: pool.available(i) for i, label in enumerate(pool.labels)}
            stages[stage]["requests"] = {f"{p}:{o}": n for (p, o), n in sorted(pool.outcomes.items())}
        egress = {f"{p}:{k}": {"requests": r, "bytes": b} for (p, k), (r, b) in sorted(self.ledger.totals().items())}
        return {"providers": stages, "sent_off_device": egress}

    async def aclose(self) -> None:
        for engine in (self.stt, self.llm, self.tts):
            await engine.aclose()

    def close(self) -> None:
        for engine in (self.stt, self.llm, self.tts):
            engine.close()


def cloud_engine(stage: str, name: str, config: Config, ledger: EgressLedger | None = None) -> Any:
    """The client of cloud provider ``name`` for ``stage``, from its ``[cloud.NAME]`` section."""
    if name == "openai":
        from appliance.providers.openai import OpenAILLM, OpenAISTT, OpenAITTS

        c = config.cloud.openai
        if stage == "llm":
            return OpenAILLM(
                base_url=c.base_url,
                api_key=c.api_key,
                model=c.model,
                max_tokens=config.llm.max_tokens,
                temperature=config.llm.temperature,
                ledger=ledger,
            )
        if stage == "stt":
            return OpenAISTT(
                base_url=c.base_url, api_key=c.api_key, model=c.stt_model, language=config.stt.language, ledger=ledger
            )
        return OpenAITTS(base_url=c.base_url, api_key=c.api_key, model=c.tts_model, voice=c.voice, ledger=ledger)
    if name == "deepgram":
        from appliance.providers.deepgram import DeepgramSTT

        d = config.cloud.deepgram
        return DeepgramSTT(
            api_key=d.api_key,
            model=d.model,
            language=config.stt.language,
            base_url=d.base_url,
            endpointing_ms=d.endpointing_ms,
            ledger=ledger,
        )
    if name == "elevenlabs":
        from appliance.providers.elevenlabs import ElevenLabsTTS

        e = config.cloud.elevenlabs
        return ElevenLabsTTS(api_key=e.api_key, voice_id=e.voice_id, model=e.model, base_url=e.base_url, ledger=ledger)
    raise ConfigError(f"{stage}.providers: unknown provider {name!r}")


def fallback(stage: str, engines: list[Any], labels: Sequence[str], attempt_timeout: float | None = None) -> Any:
    """``engines`` behind the stage's fallback adapter (``attempt_timeout`` None: the adapter's default)."""
    from appliance.providers.fallback_llm import FallbackLLM
    from appliance.providers.fallback_stt import FallbackSTT
    from appliance.providers.fallback_tts import FallbackTTS

    adapter: Any = {"llm": FallbackLLM, "stt": FallbackSTT, "tts": FallbackTTS}[stage]
    timeout = {} if attempt_timeout is None else {"attempt_timeout": attempt_timeout}
    return adapter(engines, labels=labels, **timeout)


def _chain(stage: str, local: Callable[[], Any], config: Config, ledger: EgressLedger | None) -> Any:
    """The stage's engines in the config's order: the local engine alone, or all of them behind the stage's
    fallback adapter, labelled by their config names."""
    names = config.providers(stage)
    engines = [local() if name == "local" else cloud_engine(stage, name, config, ledger) for name in names]
    if names == ("local",):
        return engines[0]
    return fallback(stage, engines, names, getattr(config, stage).attempt_timeout)


def build_llm(config: Config, models: Models, ledger: EgressLedger | None = None) -> LLM:
    llm: LLM = _chain("llm", lambda: models.llm(config.engines()), config, ledger)
    return llm


def build_stt(config: Config, models: Models, ledger: EgressLedger | None = None) -> STT:
    stt: STT = _chain("stt", lambda: models.stt(config.engines()), config, ledger)
    return stt


def build_tts(config: Config, models: Models, ledger: EgressLedger | None = None) -> TTS:
    tts: TTS = _chain("tts", lambda: models.tts(config.engines()), config, ledger)
    return tts
