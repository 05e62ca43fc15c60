"""Is the speaker taken out of the microphone where it needs to be, and has the canceller found the echo?"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from appliance.calibrate.flow import LOUD_ECHO_DB
from appliance.config import Config
from appliance.doctor.result import CheckResult, Status
from appliance.errors import ApplianceError
from appliance.service.status import read_status

STATUS_TIMEOUT = 3.0


def echo_check(config: Config, candidates: list[Path], cli: str) -> CheckResult:
    name = "audio.echo_cancellation"
    mode = config.audio.echo_cancellation
    level = config.calibration.echo_level_db
    heard = f"calibrate heard the speaker at {level:.0f} dB" if level is not None else "no echo path calibrated"
    if not config.echo_cancellation:
        if level is not None and level > LOUD_ECHO_DB:
            return CheckResult(
                name,
                Status.WARN,
                f"off ({mode}) but {heard}: the device will hear itself and can interrupt its own replies",
                'set audio.echo_cancellation = "auto" (or "on")',
            )
        why = "auto: " + heard if mode == "auto" else "off in the config"
        return CheckResult(name, Status.OK, f"off ({why})")
    try:
        from appliance.echo.webrtc import WebRTCEchoCanceller

        WebRTCEchoCanceller().close()
    except ApplianceError as exc:
        return CheckResult(name, Status.FAIL, str(exc), "./scripts/install")
    live = _daemon_figures(candidates)
    if live is None:
        return CheckResult(name, Status.OK, f"on ({mode}; {heard}); no daemon running to say how well it works")
    if live.get("erle_db") is None:
        return CheckResult(name, Status.OK, f"on ({mode}); not converged yet: the speaker has not played enough")
    erle = float(live["erle_db"])
    detail = f"on ({mode}); takes out {erle:.0f} dB of echo over the last replies"
    if not live.get("converged"):
        return CheckResult(
            name,
            Status.WARN,
            f"{detail}: not converged",
            f"run {cli} calibrate with the speaker at its usual volume, and keep the microphone away from it",
        )
    return CheckResult(name, Status.OK, f"{detail} (converged)")


def _daemon_figures(candidates: list[Path]) -> dict[str, Any] | None:
    for path in candidates:
        if path.exists():
            with contextlib.suppress(ApplianceError, OSError):
                figures = read_status(path, STATUS_TIMEOUT).get("echo_cancellation")
                return figures if isinstance(figures, dict) else None
    return None
