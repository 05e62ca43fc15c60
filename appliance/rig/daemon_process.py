"""Driving ``appliance-cli run`` from outside, as a user would: for end-to-end tests and the live bench."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame, window_levels
from appliance.errors import ApplianceError

READY_TIMEOUT = 120.0
Event = dict[str, Any]


def voiced_span(audio: AudioFrame, floor_db: float = 30.0) -> tuple[float, float]:
    """Where the talking is in a clip, by level: first and last 20 ms block within ``floor_db`` of the loudest."""
    win = SAMPLE_RATE // 50
    levels = window_levels(audio.data, win)
    loud = np.flatnonzero(levels > levels.max() - floor_db)
    return float(loud[0] * win / SAMPLE_RATE), float((loud[-1] + 1) * win / SAMPLE_RATE)


class DaemonProcess:
    """``appliance-cli run --events`` as a subprocess: its events (stamped on arrival) and its log."""

    def __init__(
        self, args: list[str], env: dict[str, str], log_path: Path | None = None, config: Path | None = None
    ) -> None:
        options = ["--config", str(config)] if config else []
        cmd = [sys.executable, "-m", "appliance", *options, "run", "--events", *args]
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.events: list[tuple[float, Event]] = []
        self.log: list[str] = []
        self._log_file = log_path.open("a") if log_path else None
        self._changed = threading.Condition()
        self._threads = [
            threading.Thread(target=self._read_events, name="daemon-events", daemon=True),
            threading.Thread(target=self._read_log, name="daemon-log", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read_events(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            with self._changed:
                self.events.append((time.time(), event))
                self._changed.notify_all()

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            if self._log_file:
                self._log_file.write(line)
                self._log_file.flush()
            with self._changed:
                self.log.append(line.rstrip("\n"))
                self._changed.notify_all()

    def _wait(self, found: Callable[[], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = found()
                if result:
                    return result
                if self.proc.poll() is not None:
                    tail = "\n".join(self.log[-15:])
                    raise ApplianceError(f"the daemon exited ({self.proc.returncode}) waiting for {what}:\n{tail}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {what} within {timeout} s; log tail:\n" + "\n".join(self.log[-15:]))
                self._changed.wait(min(left, 0.2))

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        self._wait(lambda: any(": ready" in line for line in self.log), timeout, "ready line")

    def find(self, kind: str, since: float = 0.0, **match: Any) -> list[Event]:
        with self._changed:
            return [
                e
                for t, e in self.events
                if e["type"] == kind
                and e.get("created_at", t) >= since
                and all(e.get(k) == v for k, v in match.items())
            ]

    def wait_event(self, kind: str, since: float = 0.0, timeout: float = 30.0, **match: Any) -> Event:
        found: list[Event] = self._wait(lambda: self.find(kind, since, **match), timeout, f"{kind} {match or ''}")
        return found[0]

    def wait_item(self, role: str, since: float = 0.0, timeout: float = 30.0) -> dict[str, Any]:
        """The first conversation item of ``role`` (user, assistant) added since ``since``."""

        def items() -> list[dict[str, Any]]:
            return [e["item"] for e in self.find("conversation_item_added", since) if e["item"]["role"] == role]

        found: list[dict[str, Any]] = self._wait(items, timeout, f"a {role} item")
        return found[0]

    def state(self) -> str:
        states = self.find("agent_state_changed")
        return str(states[-1]["new_state"]) if states else "initializing"

    def wait_state(self, state: str, timeout: float = 30.0) -> None:
        self._wait(lambda: self.state() == state, timeout, f"state {state}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the daemon has used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def rss_mb(self) -> float:
        """Resident memory now, MiB."""
        return self._status_mb("VmRSS")

    def peak_rss_mb(self) -> float:
        """The most resident memory so far, MiB."""
        return self._status_mb("VmHWM")

    def _status_mb(self, field: str) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for t in self._threads:
            t.join(5)
        if self._log_file:
            self._log_file.close()
        return self.proc.returncode
