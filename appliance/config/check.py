"""Checks that need the world outside the file: the models it names are there, the devices it names exist."""

from __future__ import annotations

import ipaddress
import socket

from appliance.config.schema import Config
from appliance.engines import Models
from appliance.errors import ApplianceError, ConfigError


def model_keys(config: Config) -> list[tuple[str, str, str]]:
    """(config key, model name, role) for every model the config loads."""
    keys: list[tuple[str, str, str]] = []
    if config.agent.require_wake_word:
        keys += [(f"wake.words[{i}]", word, "wake") for i, word in enumerate(config.wake.words)]
        keys += [("wake.words", "oww_melspectrogram", "wake"), ("wake.words", "oww_embedding", "wake")]
    keys += [
        ("vad.model", config.vad.model, "vad"),
        ("stt.model", config.stt.model, "stt"),
        ("llm.model", config.llm.model, "llm"),
        ("tts.voice", config.tts.voice, "tts"),
        ("tts.voice", f"{config.tts.voice}-config", "tts"),
    ]
    if config.agent.turn_detection == "model":
        keys.append(("turn.model", config.turn.model, "turn"))
    return keys


def check_models(config: Config, models: Models) -> None:
    """Every model named is in the manifest, fetched and intact (hashed once per file change)."""
    for key, name, role in model_keys(config):
        try:
            models.path(name, role)
        except ApplianceError as exc:
            raise ConfigError(f"{key} = {name!r}: {exc}") from exc


def check_devices(config: Config) -> None:
    """The configured microphone and speaker exist (opening them is the daemon's and doctor's job)."""
    from appliance.audio.devices import Kind, find_device

    wanted: tuple[tuple[str, str | None, Kind], ...] = (
        ("audio.input_device", config.audio.input_device, "input"),
        ("audio.output_device", config.audio.output_device, "output"),
    )
    for key, spec, kind in wanted:
        try:
            find_device(spec, kind)
        except ApplianceError as exc:
            raise ConfigError(f"{key} = {spec!r}: {exc}" if spec else f"{key} (unset): {exc}") from exc


def check_metrics(config: Config) -> str | None:
    """The metrics address can be listened on (a ``ConfigError`` if not); a warning when it is not loopback."""
    if not config.metrics.enabled:
        return None
    host = config.metrics.host
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM)
        family, kind, proto, _, address = infos[0]
        with socket.socket(family, kind, proto) as probe:
            probe.bind(address)  # port 0: the address, not the port (a running daemon holds that)
    except OSError as exc:
        raise ConfigError(
            f"metrics.host = {host!r} cannot be listened on ({exc.strerror}); use 127.0.0.1 or an address of "
            "this machine"
        ) from exc
    if not ipaddress.ip_address(address[0]).is_loopback:
        return (
            f"metrics.host = {host!r} serves the metrics to the network (turns, latencies, what was sent to which "
            "provider); keep 127.0.0.1 unless a scraper elsewhere needs them"
        )
    return None


def check_config(config: Config, models: Models, *, devices: bool = True) -> str | None:
    """Raise a ``ConfigError`` for the first problem; returns a warning worth showing, if any."""
    check_models(config, models)
    if devices:
        check_devices(config)
    if config.livekit.enabled and (missing := config.livekit.missing()):
        raise ConfigError(missing)
    return check_metrics(config)
