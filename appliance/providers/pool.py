"""The providers of one stage in order, with a circuit breaker each, a background probe that brings a skipped
provider back, and counts of every request's outcome (for the metrics and ``status``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from appliance.errors import APIConnectionError, APIError
from appliance.providers.attempt import FailedAttempt

logger = logging.getLogger(__name__)

P = TypeVar("P")
T = TypeVar("T")

PROBE_TIMEOUT = 10.0
"""Seconds a probe of a skipped provider may take."""
FALLBACK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0)


@dataclass(frozen=True)
class AvailabilityChanged:
    """A provider was taken out of the rotation (its breaker opened) or brought back by a probe."""

    stage: str
    provider: str
    available: bool
    reason: str


@dataclass
class _Breaker:
    failures: int = 0
    """Failures in a row."""
    open_until: float = 0.0
    """Monotonic time until which the provider is skipped (0: in rotation)."""
    reported: set[str] = field(default_factory=set)
    """Non-retryable errors already logged at ERROR (each is said once)."""

    @property
    def open(self) -> bool:
        return self.open_until > 0.0


class ProviderPool(Generic[P]):
    """``max_failures`` failures in a row open a provider's breaker: it is skipped for ``cool_down`` seconds,
    then probed in the background until it answers. A non-retryable failure (a refused key) opens it at once."""

    def __init__(
        self,
        stage: str,
        providers: Sequence[P],
        labels: Sequence[str],
        *,
        attempt_timeout: float,
        max_failures: int = 3,
        cool_down: float = 30.0,
        probe: Callable[[P], Awaitable[None]] | None = None,
    ) -> None:
        if not providers:
            raise ValueError(f"{stage}: no providers")
        self.stage, self.providers, self.labels = stage, list(providers), list(labels)
        self.attempt_timeout, self.max_failures, self.cool_down = attempt_timeout, max_failures, cool_down
        self._probe = probe
        self._breakers = [_Breaker() for _ in providers]
        self._probes: dict[int, asyncio.Task[None]] = {}
        self._listeners: list[Callable[[AvailabilityChanged], None]] = []
        self.outcomes: Counter[tuple[str, str]] = Counter()
        """(provider, outcome) -> requests: ``ok``, ``error``, ``refused``, ``timeout``, ``skipped``."""
        self.fallback_seconds: list[float] = []
        """Per request served after a fallback: the seconds the failed tries cost (the latest 1000)."""

    def on_availability_changed(self, callback: Callable[[AvailabilityChanged], None]) -> None:
        self._listeners.append(callback)

    def available(self, index: int) -> bool:
        return not self._breakers[index].open

    def order(self) -> list[int]:
        """Providers to try, in order: those in rotation; every one if none is (better a try than silence)."""
        usable = [i for i in range(len(self.providers)) if self.available(i)]
        for i in range(len(self.providers)):
            if i not in usable:
                self.outcomes[self.labels[i], "skipped"] += 1
        return usable or list(range(len(self.providers)))

    def timeout_for(self, position: int, tries: int) -> float | None:
        """The attempt timeout, except for the last provider tried: with nobody left to ask, its own bounds
        apply (cutting it short would only turn a slow answer into none)."""
        return self.attempt_timeout if position < tries - 1 else None

    async def first_answer(
        self, ask: Callable[[P], Awaitable[T]], failed: list[FailedAttempt], *, exclude: int | None = None
    ) -> tuple[int, T]:
        """Ask the providers in order until one answers: a failure, or no answer within the attempt timeout
        (``wait_for`` cancels ``ask``, which closes what it opened), moves on to the next. The tries that failed
        are appended to ``failed``; an ``APIConnectionError`` when every provider failed. ``exclude``: a
        provider that already failed this request (its failure is in ``failed``)."""
        order = [i for i in self.order() if i != exclude]
        for position, index in enumerate(order):
            start = time.perf_counter()
            try:
                answer = await asyncio.wait_for(ask(self.providers[index]), self.timeout_for(position, len(order)))
            except (Exception, TimeoutError) as exc:
                timed_out = isinstance(exc, TimeoutError)
                failed.append(self.failed(index, None if timed_out else exc, time.perf_counter() - start))
                continue
            self.succeeded(index, failed)
            return index, answer
        tried = ", ".join(f"{a.provider}: {a.outcome}" for a in failed)
        raise APIConnectionError(f"{self.stage}: every provider failed ({tried})", retryable=False)

    def succeeded(self, index: int, failed: Sequence[FailedAttempt]) -> None:
        breaker = self._breakers[index]
        breaker.failures = 0
        self.outcomes[self.labels[index], "ok"] += 1
        if failed:
            self.fallback_seconds.append(sum(a.seconds for a in failed))
            del self.fallback_seconds[:-1000]
        if breaker.open:  # it answered a request while it was being skipped (every provider was down)
            self._close(index, "answered")

    def failed(self, index: int, error: Exception | None, seconds: float) -> FailedAttempt:
        """Count a failed try (``error`` None: no first output in time) and open the breaker if it is due."""
        label, breaker = self.labels[index], self._breakers[index]
        retryable = error is None or not isinstance(error, APIError) or error.retryable
        outcome = "timeout" if error is None else ("error" if retryable else "refused")
        self.outcomes[label, outcome] += 1
        breaker.failures += 1
        what = f"no first output within {self.attempt_timeout:g} s" if error is None else str(error)
        if not retryable and what not in breaker.reported:
            breaker.reported.add(what)
            logger.error("provider refused the request", extra={"stage": self.stage, "provider": label, "error": what})
        else:
            logger.warning(
                "provider failed, trying the next",
                extra={"stage": self.stage, "provider": label, "outcome": outcome, "error": what},
            )
        if not breaker.open and (not retryable or breaker.failures >= self.max_failures):
            self._open(index, what)
        return FailedAttempt(label, outcome, seconds)

    def _open(self, index: int, reason: str) -> None:
        self._breakers[index].open_until = time.monotonic() + self.cool_down
        self._announce(index, False, reason)
        if self._probe is not None and index not in self._probes:
            self._probes[index] = asyncio.create_task(self._probing(index), name=f"probe-{self.labels[index]}")

    def _close(self, index: int, reason: str) -> None:
        breaker = self._breakers[index]
        breaker.open_until, breaker.failures = 0.0, 0
        breaker.reported.clear()
        self._announce(index, True, reason)

    async def _probing(self, index: int) -> None:
        """After each cool-down, one small request; the first that succeeds brings the provider back."""
        assert self._probe is not None
        breaker = self._breakers[index]
        try:
            while breaker.open:
                await asyncio.sleep(max(0.0, breaker.open_until - time.monotonic()))
                if not breaker.open:
                    break
                try:
                    await asyncio.wait_for(self._probe(self.providers[index]), PROBE_TIMEOUT)
                except (Exception, TimeoutError) as exc:
                    breaker.open_until = time.monotonic() + self.cool_down
                    logger.info("provider probe failed", extra={"provider": self.labels[index], "error": str(exc)})
                else:
                    self._close(index, "probe answered")
        finally:
            self._probes.pop(index, None)

    def _announce(self, index: int, available: bool, reason: str) -> None:
        event = AvailabilityChanged(self.stage, self.labels[index], available, reason)
        logger.warning(
            "provider availability changed",
            extra={"stage": self.stage, "provider": event.provider, "available": available, "reason": reason},
        )
        for callback in self._listeners:
            try:
                callback(event)
            except Exception:
                logger.exception("availability listener failed")

    async def aclose(self) -> None:
        tasks = list(self._probes.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)
