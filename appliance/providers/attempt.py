"""What a fallback cost: the tries that failed before a provider served the request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FailedAttempt:
    provider: str
    outcome: str
    """``error`` (a retryable failure), ``refused`` (not retryable: a bad key or request) or ``timeout`` (no
    first output within the attempt timeout)."""
    seconds: float
    """Time the try took before the next provider was asked."""
