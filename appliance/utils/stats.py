"""Small statistics shared by the daemon's status and the benchmarks."""

from __future__ import annotations


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (nearest rank), rounded for reports."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return round(ordered[k], 4)


def or_nan(value: float | None) -> float:
    """A gauge's value: NaN while there is none (Prometheus shows no figure rather than a false 0)."""
    return float("nan") if value is None else float(value)
