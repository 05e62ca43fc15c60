"""Models checked again while the daemon runs: an SD card that goes bad changes a file's bytes without its
size or modification time, which the load-time stamp cannot see. Each loaded model is hashed in a worker
thread some time after start (never before READY) and again every day."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from appliance.errors import ModelError
from appliance.models.manifest import ModelSpec
from appliance.models.store import ModelStore, Status

logger = logging.getLogger(__name__)

FIRST_CHECK = 120.0
"""Seconds after start before the first check (the first turns get the CPU)."""
RECHECK = 24 * 3600.0
"""Seconds between checks."""


async def check_once(store: ModelStore, specs: Sequence[ModelSpec], on_corrupt: Callable[[ModelError], None]) -> int:
    """Hash each model once; each corrupted one is logged, reported, and loses its stamp (the next start
    refuses it with the fix). Returns how many were corrupted."""
    bad = 0
    for spec in specs:
        result = await asyncio.to_thread(store.check, spec, full=True)
        if result.status is Status.CORRUPT:
            bad += 1
            error = ModelError(
                f"model file {result.path} changed on disk ({result.detail}); the device may answer wrongly "
                f"or not at all: run `appliance-cli models fetch --name {spec.name}`, then restart"
            )
            logger.error(str(error), extra={"model": spec.name, "path": str(result.path)})
            on_corrupt(error)
    return bad


async def watch(
    store: ModelStore,
    specs: Sequence[ModelSpec],
    on_corrupt: Callable[[ModelError], None],
    *,
    first: float = FIRST_CHECK,
    every: float = RECHECK,
) -> None:
    """``check_once`` after ``first`` seconds, then every ``every`` seconds, until cancelled."""
    await asyncio.sleep(first)
    while True:
        await check_once(store, specs, on_corrupt)
        await asyncio.sleep(every)
