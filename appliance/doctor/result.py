"""What one check found: a status, one line of detail, and the fix when something is wrong."""

from __future__ import annotations

import dataclasses
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)


class Status(enum.StrEnum):
    OK = "ok"
    WARN = "warn"
    """Works, but worse than it could (slow, hot, not calibrated)."""
    FAIL = "fail"
    """Broken: the appliance will not work until it is fixed."""
    SKIP = "skip"
    """Not checked: the platform does not expose it, or it was not asked for."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    """Dotted name, e.g. ``audio.input`` or ``engine.stt``."""
    status: Status
    detail: str
    """What was found, with figures."""
    fix: str = ""
    """What to do about it; empty when there is nothing to do."""
    seconds: float = 0.0
    """How long the check took."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "fix": self.fix,
            "seconds": round(self.seconds, 3),
        }


def timed(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    """Run ``check`` and record its time; a check that crashes is reported as a failure, not raised."""
    start = time.perf_counter()
    try:
        result = check()
    except Exception as exc:
        logger.debug("check crashed", exc_info=True, extra={"check": name})
        result = CheckResult(name, Status.FAIL, f"the check itself failed: {type(exc).__name__}: {exc}")
    return dataclasses.replace(result, seconds=time.perf_counter() - start)
