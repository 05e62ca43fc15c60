"""The circuit breaker and probe of a stage's providers."""

from __future__ import annotations

import asyncio

from appliance.errors import APIConnectionError, APIStatusError
from appliance.providers.pool import AvailabilityChanged, ProviderPool


def _pool(
    probe_ok: list[bool] | None = None, cool_down: float = 0.05
) -> tuple[ProviderPool[str], list[AvailabilityChanged]]:
    async def probe(provider: str) -> None:
        if probe_ok is not None and not probe_ok.pop(0):
            raise APIConnectionError(f"{provider}: still down")

    pool: ProviderPool[str] = ProviderPool(
        "llm",
        ["cloud", "local"],
        ["openai", "local"],
        attempt_timeout=1.0,
        max_failures=3,
        cool_down=cool_down,
        probe=probe,
    )
    events: list[AvailabilityChanged] = []
    pool.on_availability_changed(events.append)
    return pool, events


def test_three_retryable_failures_in_a_row_skip_the_provider_until_a_probe_answers() -> None:
    async def go() -> None:
        pool, events = _pool(probe_ok=[False, True])
        for _ in range(2):
            pool.failed(0, APIStatusError("openai: HTTP 500", status=500), 0.01)
        assert pool.order() == [0, 1]
        pool.failed(0, None, 1.0)
        assert pool.order() == [1]
        assert [(e.provider, e.available) for e in events] == [("openai", False)]
        for _ in range(100):  # the first probe fails, the second brings it back
            if pool.available(0):
                break
            await asyncio.sleep(0.02)
        assert pool.order() == [0, 1]
        assert [(e.provider, e.available, e.reason) for e in events][-1] == ("openai", True, "probe answered")
        assert pool.outcomes["openai", "error"] == 2 and pool.outcomes["openai", "timeout"] == 1
        assert pool.outcomes["openai", "skipped"] == 1
        await pool.aclose()

    asyncio.run(go())


def test_a_refused_key_opens_the_breaker_at_once_and_a_success_resets_the_count() -> None:
    async def go() -> None:
        pool, events = _pool(probe_ok=None, cool_down=60.0)
        pool.failed(1, APIConnectionError("local: busy"), 0.01)
        pool.succeeded(1, [])
        pool.failed(1, APIConnectionError("local: busy"), 0.01)
        pool.failed(1, APIConnectionError("local: busy"), 0.01)
        assert pool.available(1)  # two in a row since the success, not three
        attempt = pool.failed(0, APIStatusError("openai: HTTP 401", status=401), 0.02)
        assert attempt.outcome == "refused" and not pool.available(0)
        assert events[0].available is False and "401" in events[0].reason
        assert pool.order() == [1]
        pool.succeeded(1, [attempt])
        assert pool.fallback_seconds == [0.02]
        await pool.aclose()

    asyncio.run(go())


def test_the_last_provider_tried_gets_no_attempt_timeout_and_all_down_tries_all() -> None:
    async def go() -> None:
        pool, _ = _pool(probe_ok=None, cool_down=60.0)
        assert pool.timeout_for(0, 2) == 1.0 and pool.timeout_for(1, 2) is None
        for index in (0, 1):
            pool.failed(index, APIStatusError("HTTP 401", status=401), 0.0)
        assert pool.order() == [0, 1]  # better a try than silence
        await pool.aclose()

    asyncio.run(go())
