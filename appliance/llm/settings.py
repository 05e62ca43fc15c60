"""How the local llama.cpp model runs and samples (the ``[llm]`` section builds it)."""

from __future__ import annotations

from dataclasses import dataclass

from appliance.errors import ConfigError


@dataclass(frozen=True)
class LlamaSettings:
    """How llama.cpp runs and samples."""

    n_ctx: int = 2048
    threads: int = 0
    """0 takes the number of CPU cores."""
    max_tokens: int = 160
    """Upper bound of a reply, in tokens: a spoken answer is short."""
    temperature: float = 0.3
    top_p: float = 0.9
    repeat_penalty: float = 1.15
    first_token_timeout: float = 10.0
    """Seconds to wait for the first token before the request fails."""
    token_timeout: float = 5.0
    """Seconds to wait between two tokens before the request fails."""

    def __post_init__(self) -> None:
        if self.n_ctx < 256:
            raise ConfigError(f"llm.n_ctx = {self.n_ctx} is too small; use at least 256 tokens")
        if not 1 <= self.max_tokens <= self.n_ctx:
            raise ConfigError(f"llm.max_tokens = {self.max_tokens} is out of range; use 1 to llm.n_ctx ({self.n_ctx})")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"llm.temperature = {self.temperature} is out of range; use 0 to 2")
        if not 0 <= self.threads <= 64:
            raise ConfigError(f"llm.threads = {self.threads} is out of range; use 0 (automatic) to 64")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"llm.top_p = {self.top_p} is out of range; use more than 0 and at most 1")
        if not 1.0 <= self.repeat_penalty <= 2.0:
            raise ConfigError(f"llm.repeat_penalty = {self.repeat_penalty} is out of range; use 1 to 2")
        for name in ("first_token_timeout", "token_timeout"):
            value = getattr(self, name)
            if not 0.1 <= value <= 300:
                raise ConfigError(f"llm.{name} = {value} is out of range; use 0.1 to 300 seconds")
