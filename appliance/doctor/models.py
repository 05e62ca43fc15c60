"""The models the config names: in the manifest, present, and matching their sha256."""

from __future__ import annotations

import functools

from appliance.config import Config
from appliance.config.check import model_keys
from appliance.doctor.result import CheckResult, Status, timed
from appliance.engines import Models
from appliance.errors import ApplianceError
from appliance.models.store import Status as ModelStatus

PROCESS_OVERHEAD = 350_000_000
"""Bytes of the daemon beyond its model files (Python, onnxruntime, buffers): measured as a 626 MB peak RSS
with 237 MB of default models, the files counted 1.2 times for their runtime buffers."""


def needed_models(config: Config) -> dict[str, tuple[str, str]]:
    """Model name -> (config key, role), each name once."""
    needed: dict[str, tuple[str, str]] = {}
    for key, name, role in model_keys(config):
        needed.setdefault(name, (key, role))
    return needed


def memory_needed(config: Config, models: Models) -> int:
    """Bytes the configured models take once loaded, with the process around them."""
    files = sum(models.specs[name].size for name in needed_models(config) if name in models.specs)
    return int(files * 1.2) + PROCESS_OVERHEAD


def model_checks(config: Config, models: Models, cli: str) -> tuple[list[CheckResult], set[str]]:
    """One result per model, and the names of the broken ones. ``cli``: how to call appliance-cli here."""
    results: list[CheckResult] = []
    broken: set[str] = set()
    for name, (key, role) in needed_models(config).items():
        result = timed(f"models.{name}", functools.partial(_check, models, name, key, role, cli))
        if result.status is Status.FAIL:
            broken.add(name)
        results.append(result)
    return results, broken


def _check(models: Models, name: str, key: str, role: str, cli: str) -> CheckResult:
    check_name = f"models.{name}"
    try:
        spec = models.spec(name, role)
    except ApplianceError as exc:
        return CheckResult(check_name, Status.FAIL, f"{key} = {name!r}: {exc}", f"{cli} models list")
    fix = f"{cli} models fetch --name {name}"
    found = models.store.check(spec, full=True)
    if found.status is ModelStatus.MISSING:
        return CheckResult(check_name, Status.FAIL, f"missing: {found.path}", fix)
    if found.status is ModelStatus.CORRUPT:
        return CheckResult(check_name, Status.FAIL, f"corrupted or truncated: {found.path} ({found.detail})", fix)
    models.store.mark_verified(spec)
    size = f"{spec.size / 1e6:.1f} MB" if spec.size >= 100_000 else f"{spec.size / 1e3:.1f} kB"
    return CheckResult(check_name, Status.OK, f"sha256 verified ({size})")
