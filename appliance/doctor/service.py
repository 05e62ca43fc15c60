"""The service: is systemd running it, and does the running daemon answer on its status socket."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import warnings
from pathlib import Path

from appliance.config import SERVICE_RUNTIME_DIR, Config
from appliance.doctor.result import CheckResult, Status

SYSTEMD_RUNNING = Path("/run/systemd/system")
"""Present when systemd is PID 1 (sd_booted(3))."""
SYSTEM_UNIT = Path("/etc/systemd/system/appliance.service")
USER_UNIT = Path("/etc/systemd/user/appliance.service")
SOCKET_TIMEOUT = 2.0


def service_state_check(systemd_dir: Path = SYSTEMD_RUNNING) -> CheckResult:
    name = "service.state"
    if not systemd_dir.is_dir() or shutil.which("systemctl") is None:
        return CheckResult(name, Status.SKIP, "systemd is not running as init here: no service to ask about")
    if SYSTEM_UNIT.exists():
        command, unit = ["systemctl"], "appliance.service (system)"
        journal, start = "journalctl -u appliance -b", "sudo systemctl enable --now appliance"
    elif USER_UNIT.exists():
        command, unit = ["systemctl", "--user"], "appliance.service (user)"
        journal, start = "journalctl --user -u appliance -b", "systemctl --user enable --now appliance"
    else:
        return CheckResult(name, Status.SKIP, "not installed as a service (sudo ./scripts/install-service does it)")
    try:
        proc = subprocess.run(
            [*command, "is-active", "appliance.service"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return CheckResult(name, Status.WARN, f"{unit}: systemctl did not answer ({exc})")
    state = proc.stdout.strip() or proc.stderr.strip() or "unknown"
    if state in ("active", "reloading", "activating"):
        return CheckResult(name, Status.OK, f"{unit} is {state}")
    if state == "failed":
        return CheckResult(name, Status.FAIL, f"{unit} has failed", f"read {journal}, then restart it")
    return CheckResult(name, Status.WARN, f"{unit} is {state}", start)


def socket_candidates(config: Config) -> list[Path]:
    """Where a running daemon answers: the configured socket, else the service's, then this user's."""
    if config.service.status_socket:
        return [Path(config.service.status_socket)]
    with warnings.catch_warnings():  # platformdirs warns when it has to guess the user's runtime directory
        warnings.simplefilter("ignore")
        user = config.service.socket_path()
    return list(dict.fromkeys([SERVICE_RUNTIME_DIR / "status.sock", user]))


def status_socket_check(candidates: list[Path]) -> CheckResult:
    """The daemon answers one JSON document on its status socket (what ``appliance-cli status`` reads)."""
    name = "service.status"
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        return CheckResult(name, Status.SKIP, f"no daemon answers here (no {' or '.join(map(str, candidates))})")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(SOCKET_TIMEOUT)
            sock.connect(str(path))
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        doc = json.loads(data)
    except PermissionError:
        user = os.environ.get("USER", "$USER")
        return CheckResult(
            name, Status.WARN, f"{path}: permission denied", f"sudo usermod -aG appliance {user}, then log in again"
        )
    except (OSError, ValueError) as exc:
        return CheckResult(name, Status.WARN, f"{path} does not answer ({exc})", "restart the appliance")
    if not isinstance(doc, dict):
        return CheckResult(name, Status.WARN, f"{path} answers, but not with a status document")
    return CheckResult(name, Status.OK, f"{path}: daemon {doc.get('pid')} is {doc.get('state')}")
