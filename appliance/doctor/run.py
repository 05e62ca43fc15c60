"""All the checks, in the order a problem is best understood: config, machine, service, sound, models, engines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from appliance.calibrate.flow import LOW_SNR_DB
from appliance.config import Config, find_config, load_config
from appliance.doctor.audio import device_checks
from appliance.doctor.echo import echo_check
from appliance.doctor.engines import engine_checks
from appliance.doctor.livekit import livekit_checks
from appliance.doctor.models import memory_needed, model_checks
from appliance.doctor.providers import provider_checks
from appliance.doctor.result import CheckResult, Status, timed
from appliance.doctor.service import service_state_check, state_dir_check, status_socket_check
from appliance.doctor.system import cpu_check, memory_check, temperature_check, throttling_check
from appliance.engines import Models
from appliance.errors import ConfigError
from appliance.service.status import socket_candidates


@dataclass(frozen=True)
class DoctorOptions:
    config: str | None = None
    """``--config``: None looks in the usual places."""
    models_dir: str | None = None
    """``--models-dir``: None takes the config's, else the default."""
    devices: bool = True
    engines: bool = True
    cli: str = "appliance-cli"
    """How to call appliance-cli with the same options, for the fixes."""


def run_doctor(options: DoctorOptions) -> Iterator[CheckResult]:
    """Every check's result as soon as it is known."""
    config, result = _config(options)
    yield result
    yield _calibration(config, options.cli)
    explicit = options.models_dir or config.models.dir
    models = Models(Path(explicit) if explicit else None)
    yield timed("system.cpu", cpu_check)
    yield timed("system.memory", lambda: memory_check(memory_needed(config, models)))
    yield timed("system.temperature", temperature_check)
    yield timed("system.throttling", throttling_check)
    state = timed("service.state", service_state_check)
    yield state
    status = timed("service.status", lambda: status_socket_check(socket_candidates(config)))
    yield status
    yield timed("service.state_dir", lambda: state_dir_check(config))
    running = Status.OK in (state.status, status.status)  # it may hold the devices, and be in the LiveKit room
    if options.devices:
        yield from device_checks(config.audio, service_active=running)
        yield timed("audio.echo_cancellation", lambda: echo_check(config, socket_candidates(config), options.cli))
    else:
        yield CheckResult("audio", Status.SKIP, "not checked (--no-devices)")
    yield from provider_checks(config)
    yield from livekit_checks(config, service_active=running)
    results, broken = model_checks(config, models, options.cli)
    yield from results
    if options.engines:
        yield from engine_checks(config, models, broken, options.cli)
    else:
        yield CheckResult("engine", Status.SKIP, "not loaded (--no-engines)")


def _config(options: DoctorOptions) -> tuple[Config, CheckResult]:
    try:
        path = find_config(options.config)
        config = load_config(path)
    except ConfigError as exc:
        return Config(), CheckResult(
            "config",
            Status.FAIL,
            f"{exc}; the checks below use the built-in defaults",
            f"fix the config, then {options.cli} config check",
        )
    return config, CheckResult("config", Status.OK, str(path) if path else "no config file: built-in defaults")


def _calibration(config: Config, cli: str) -> CheckResult:
    c = config.calibration
    name = "config.calibration"
    if c.calibrated_at is None:
        return CheckResult(name, Status.SKIP, f"not calibrated ({cli} calibrate measures the room)")
    figures = [f"at {c.calibrated_at}"]
    if c.noise_floor_dbfs is not None:
        figures.append(f"noise floor {c.noise_floor_dbfs:.0f} dBFS")
    if c.snr_db is not None:
        figures.append(f"speech {c.snr_db:.0f} dB above it")
    if c.echo_level_db is not None:
        figures.append(f"speaker heard at {c.echo_level_db:.0f} dB")
    detail = "calibrated " + ", ".join(figures)
    if c.snr_db is not None and c.snr_db < LOW_SNR_DB:
        return CheckResult(
            name,
            Status.WARN,
            f"{detail}: a noisy room for this microphone",
            f"move the microphone closer to where people speak, then {cli} calibrate",
        )
    return CheckResult(name, Status.OK, detail)
