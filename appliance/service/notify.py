"""Telling systemd how the service is doing: READY, STATUS, WATCHDOG, STOPPING (sd_notify(3)).

Through ``systemd-python``'s ``daemon.notify``, the systemd project's own binding of libsystemd's
``sd_notify``: it handles the socket address forms (abstract or path) and credentials the same way every
other systemd service does. Without ``$NOTIFY_SOCKET`` (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import logging
import os

from systemd import daemon  # type: ignore[attr-defined]

logger = logging.getLogger(__name__)


def watchdog_interval() -> float | None:
    """Seconds between required pings, or None when systemd runs no watchdog for this process.

    ``$WATCHDOG_USEC`` is the timeout; ``$WATCHDOG_PID``, when set, must be this process (a child that
    inherited the variables must not ping on the parent's behalf). As ``sd_watchdog_enabled(3)`` reads them.
    """
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        value = int(usec)
    except ValueError:
        logger.warning("ignoring a malformed WATCHDOG_USEC", extra={"value": usec})
        return None
    return value / 1e6 if value > 0 else None


class Notifier:
    """One method per message; each returns whether systemd was told (False when not under systemd)."""

    def __init__(self) -> None:
        self.enabled = bool(os.environ.get("NOTIFY_SOCKET"))

    def _send(self, message: str) -> bool:
        if not self.enabled:
            return False
        try:
            return bool(daemon.notify(message))
        except OSError as exc:  # a gone socket must never take the appliance down
            logger.warning("sd_notify failed", extra={"error": str(exc)})
            return False

    def ready(self, status: str) -> bool:
        return self._send(f"READY=1\nSTATUS={status}\nMAINPID={os.getpid()}")

    def status(self, status: str) -> bool:
        return self._send(f"STATUS={status}")

    def watchdog(self) -> bool:
        return self._send("WATCHDOG=1")

    def stopping(self, status: str) -> bool:
        return self._send(f"STOPPING=1\nSTATUS={status}")
