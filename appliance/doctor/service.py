"""The service: is systemd running it, and does the running daemon answer on its status socket."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from appliance.config import Config
from appliance.doctor.result import CheckResult, Status
from appliance.errors import ApplianceError
from appliance.service.status import read_status

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


def status_socket_check(candidates: list[Path]) -> CheckResult:
    """The daemon answers one JSON document on its status socket (what ``appliance-cli status`` reads)."""
    name = "service.status"
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        return CheckResult(name, Status.SKIP, f"no daemon answers here (no {' or '.join(map(str, candidates))})")
    if not os.access(path, os.R_OK | os.W_OK):
        user = os.environ.get("USER", "$USER")
        return CheckResult(
            name, Status.WARN, f"{path}: permission denied", f"sudo usermod -aG appliance {user}, then log in again"
        )
    try:
        doc = read_status(path, SOCKET_TIMEOUT)
    except ApplianceError as exc:
        return CheckResult(name, Status.WARN, str(exc), "restart the appliance")
    return CheckResult(name, Status.OK, f"{path}: daemon {doc.get('pid')} is {doc.get('state')}")


MIN_FREE = 20 * 1024 * 1024
"""Bytes free in the state directory below which the conversation record is at risk."""


def state_dir_check(config: Config) -> CheckResult:
    """The state directory takes the conversation record: writable, with room left."""
    name = "service.state_dir"
    if not config.agent.keep_history:
        return CheckResult(name, Status.SKIP, "agent.keep_history is off: no conversation is recorded")
    path = config.service.state_path()
    target = path if path.exists() else next((p for p in path.parents if p.exists()), Path("/"))
    fix = f"check the owner and the free space of {target} (ls -ld {target}; df -h {target})"
    try:
        with tempfile.TemporaryFile(dir=target):
            pass
    except OSError as exc:
        return CheckResult(
            name, Status.FAIL, f"{target} cannot be written ({exc.strerror}): no conversation is kept", fix
        )
    free = shutil.disk_usage(target).free
    if free < MIN_FREE:
        return CheckResult(name, Status.WARN, f"{target}: only {free // 1024 // 1024} MB free", fix)
    made = "" if path.exists() else " (made at start)"
    return CheckResult(name, Status.OK, f"{path}{made}: writable, {free // 1024 // 1024} MB free")
