"""What left the device: one log record per request that carried the user's audio or text, and running totals.

A record names the provider, the kind of data and its size, never the content. The totals feed the metrics and
``appliance-cli status``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

logger = logging.getLogger("appliance.privacy")

KINDS = ("audio", "text")


class EgressLedger:
    """What was sent, per provider and kind; thread-safe (a client may run in a worker thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bytes: Counter[tuple[str, str]] = Counter()
        self._requests: Counter[tuple[str, str]] = Counter()

    def record(self, provider: str, kind: str, nbytes: int) -> None:
        """Log and count one request's payload leaving the device (``kind``: ``audio`` or ``text``)."""
        if kind not in KINDS:
            raise ValueError(f"unknown egress kind {kind!r}")
        with self._lock:
            self._bytes[provider, kind] += nbytes
            self._requests[provider, kind] += 1
        logger.info("data sent off the device", extra={"provider": provider, "kind": kind, "bytes": nbytes})

    def totals(self) -> dict[tuple[str, str], tuple[int, int]]:
        """{(provider, kind): (requests, bytes)}"""
        with self._lock:
            return {key: (self._requests[key], self._bytes[key]) for key in self._requests}
