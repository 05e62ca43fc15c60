"""The service's own sections (``[service]``, ``[metrics]``, ``[log]``) and where the service keeps its files."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from appliance.errors import ConfigError

SERVICE_CONFIG = Path("/etc/appliance/config.toml")
"""The service's config file (the unit passes it with ``--config``)."""
SERVICE_STATE_DIR = Path("/var/lib/appliance")
SERVICE_RUNTIME_DIR = Path("/run/appliance")
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "text", "json", "journal")


def user_config_path() -> Path:
    """The per-user config for development: ``~/.config/appliance/config.toml``."""
    return Path(platformdirs.user_config_dir("appliance")) / "config.toml"


def _runtime_dir() -> Path:
    """systemd's ``RuntimeDirectory=`` for the service, else the user's runtime directory."""
    service = os.environ.get("RUNTIME_DIRECTORY")
    if service:
        return Path(service.split(":")[0])
    user = os.environ.get("XDG_RUNTIME_DIR")
    if user:
        return Path(user) / "appliance"
    with warnings.catch_warnings():  # platformdirs warns when it has to guess the user's runtime directory
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_runtime_dir("appliance"))


@dataclass(frozen=True)
class MetricsConfig:
    enabled: bool = False
    """Serve Prometheus metrics over HTTP."""
    host: str = "127.0.0.1"
    """Address to listen on: keep it on localhost unless a scraper on the network needs it."""
    port: int = 9470

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"metrics.port {self.port} is out of range; use 1 to 65535")


@dataclass(frozen=True)
class LogConfig:
    level: str = "info"
    """One of debug, info, warning, error. Transcripts are only logged at debug."""
    format: str = "auto"
    """auto (journal under systemd, else text), text, json or journal."""

    def __post_init__(self) -> None:
        if self.level not in LOG_LEVELS:
            raise ConfigError(f"log.level {self.level!r} is not known; use one of {', '.join(LOG_LEVELS)}")
        if self.format not in LOG_FORMATS:
            raise ConfigError(f"log.format {self.format!r} is not known; use one of {', '.join(LOG_FORMATS)}")


@dataclass(frozen=True)
class ServiceConfig:
    state_dir: str | None = None
    """Where the conversation is kept between restarts (unset: $STATE_DIRECTORY, else the user's state dir)."""
    status_socket: str | None = None
    """Unix socket for ``appliance-cli status`` (unset: appliance/status.sock in the runtime directory)."""
    stop_timeout: float = 6.0
    """Seconds the first stop signal waits for the current sentence before the process exits anyway."""
    watchdog_stall: float = 5.0
    """Seconds without a captured block or a turn of the event loop after which the watchdog stops being fed."""

    def __post_init__(self) -> None:
        if not 0.5 <= self.stop_timeout <= 60:
            raise ConfigError(f"service.stop_timeout {self.stop_timeout} is out of range; use 0.5 to 60 seconds")
        if not 1 <= self.watchdog_stall <= 120:
            raise ConfigError(f"service.watchdog_stall {self.watchdog_stall} is out of range; use 1 to 120 seconds")

    def state_path(self) -> Path:
        if self.state_dir:
            return Path(self.state_dir)
        env = os.environ.get("STATE_DIRECTORY")
        return Path(env.split(":")[0]) if env else Path(platformdirs.user_state_dir("appliance"))

    def socket_path(self) -> Path:
        return Path(self.status_socket) if self.status_socket else _runtime_dir() / "status.sock"
