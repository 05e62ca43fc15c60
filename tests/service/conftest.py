"""Running the install scripts into a temporary root: no accounts, no systemctl start, the real venv."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SYSTEM_UNIT = Path("etc/systemd/system/appliance.service")
USER_UNIT = Path("etc/systemd/user/appliance.service")
CONFIG = Path("etc/appliance/config.toml")


def script(name: str, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "APPLIANCE_VENV")}
    return subprocess.run(
        [str(REPO / "scripts" / name), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = script("install-service", root, "--no-models", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def analyze(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60, env=env, check=False)
