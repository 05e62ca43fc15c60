"""The units as systemd reads them, rendered by the install script with this checkout's venv."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.config import load_config
from appliance.config.load import secret_keys
from appliance.config.schema import SECTIONS
from appliance.models.store import default_models_dir
from appliance.service.daemon import CLOSE_TIMEOUT
from tests.service.conftest import REPO, SYSTEM_UNIT, USER_UNIT, analyze, install


@pytest.fixture(scope="module")
def system_unit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    install(root, "--system")
    return root / SYSTEM_UNIT


@pytest.fixture(scope="module")
def user_unit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    install(root, "--user", "--for", "pi")
    return root / USER_UNIT


def settings(unit: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_the_rendered_unit_runs_this_checkouts_venv_with_the_service_config(system_unit: Path) -> None:
    unit = settings(system_unit)
    binary, *args = unit["ExecStart"][0].split()
    assert os.access(binary, os.X_OK) and Path(binary).resolve().is_relative_to(REPO)
    assert args == ["--config", "/etc/appliance/config.toml", "run"]
    assert unit["BindReadOnlyPaths"] == [str(REPO)]
    assert "/opt/appliance" not in "".join(line for line in system_unit.read_text().splitlines() if line[:1] != "#")


def test_systemd_analyze_verify_passes(system_unit: Path) -> None:
    proc = analyze("verify", str(system_unit))
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


def test_the_user_unit_verifies_too(user_unit: Path, tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    proc = analyze("--user", "verify", str(user_unit), env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)})
    assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr


def test_exposure_is_at_most_2(system_unit: Path) -> None:
    proc = analyze("security", "--offline=true", str(system_unit))
    match = re.search(r"Overall exposure level for appliance\.service: ([0-9.]+)", proc.stdout)
    assert match, proc.stdout + proc.stderr
    assert float(match.group(1)) <= 2.0, proc.stdout


def test_the_unit_speaks_the_daemons_protocol(system_unit: Path) -> None:
    unit = settings(system_unit)
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["StateDirectory"] == ["appliance"] and unit["RuntimeDirectory"] == ["appliance"]
    assert unit["User"] == ["appliance"] and unit["SupplementaryGroups"] == ["audio"]
    assert unit["Restart"] == ["on-failure"] and "WatchdogSec" in unit
    # the daemon's stop bound (service.stop_timeout, 6 s) fits inside the unit's
    stop = load_config(REPO / "systemd" / "config.toml").service.stop_timeout
    assert float(unit["TimeoutStopSec"][0].rstrip("s")) >= stop + CLOSE_TIMEOUT + 2  # past the daemon's own hard bound
    assert unit["LoadCredential"] == credentials()  # every secret of the config can reach the service
    # sounddevice's cffi callbacks need writable executable memory
    assert "MemoryDenyWriteExecute" not in unit


def test_the_default_config_is_the_services() -> None:
    config = load_config(REPO / "systemd" / "config.toml")
    assert config.metrics.enabled and config.metrics.host == "127.0.0.1"
    assert config.models.dir == "/var/lib/appliance/models"
    assert config.log.format == "auto"


def test_the_default_config_passes_config_check() -> None:
    config, models = REPO / "systemd" / "config.toml", default_models_dir()  # the test models, not /var/lib
    args = ["--config", str(config), "--models-dir", str(models), "config", "check", "--no-devices"]
    proc = subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def credentials() -> list[str]:
    """The systemd credential of every secret in the config, section by section."""

    def walk(cls: type) -> list[str]:
        found = [f.metadata.get("credential", f.name) for f in secret_keys(cls)]
        for f in dataclasses.fields(cls):
            default = f.default_factory() if callable(f.default_factory) else None  # type: ignore[misc]
            if dataclasses.is_dataclass(default):
                found += walk(type(default))
        return found

    return [name for cls in SECTIONS.values() for name in walk(cls)]
