"""An engine's worker thread: native inference off the event loop, bounded in time, cancellable at the engine.

Every local engine runs its blocking calls here, one at a time and in order. Each call gets a ``Job`` whose
``cancelled`` flag the engine checks where it can stop (whisper.cpp's abort callback, llama.cpp between
tokens, Piper between sentences, the wake model between chunks). Cancelling the awaiting task, or a timeout,
sets the flag: a job that has not started never starts, and one that is running stops as soon as the engine
allows, so the next job does not queue behind abandoned work. Failures come out as the ``APIError`` family.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from appliance.errors import APIError, APITimeoutError, ApplianceError

logger = logging.getLogger(__name__)

T = TypeVar("T")


class JobCancelled(Exception):
    """Raised inside a job (by ``Job.check()``) once its caller has given up on it."""


class Job:
    """One call on a worker; the engine polls ``cancelled`` (or calls ``check()``) to stop early."""

    __slots__ = ("cancelled_at",)

    def __init__(self) -> None:
        self.cancelled_at: float | None = None
        """``time.monotonic()`` when its caller gave up on it. A plain attribute, not an Event: set once and
        only polled, and a job is made for every VAD batch."""

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None

    def cancel(self) -> None:
        if self.cancelled_at is None:
            self.cancelled_at = time.monotonic()

    def check(self) -> None:
        if self.cancelled_at is not None:
            raise JobCancelled


class Worker:
    """A single thread that runs one engine's jobs in order."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._running: Job | None = None
        self._queued: set[Job] = set()
        """Jobs not yet started (one that is cancelled before it starts never runs: it leaves when done)."""

    @property
    def waiting(self) -> int:
        """Jobs queued behind the running one: work that yields to others looks here between its steps."""
        return len(self._queued)

    def stuck(self, longer_than: float = 0.0) -> bool:
        """Still running a job its caller gave up on more than ``longer_than`` seconds ago (an engine that
        cannot stop mid-step, or is wedged)."""
        job = self._running
        if job is None or job.cancelled_at is None:
            return False
        return time.monotonic() - job.cancelled_at > longer_than

    def submit(self, fn: Callable[[Job], T]) -> tuple[Job, asyncio.Future[T]]:
        """Queue ``fn(job)``; the future is the job's outcome (cancelling it cancels the job)."""
        job = Job()

        def call() -> T:
            self._queued.discard(job)
            if job.cancelled:
                raise JobCancelled
            self._running = job
            try:
                return fn(job)
            finally:
                self._running = None

        self._queued.add(job)  # before the worker can start it
        future = asyncio.get_running_loop().run_in_executor(self._executor, call)

        def done(f: asyncio.Future[T]) -> None:
            self._queued.discard(job)
            if f.cancelled():
                job.cancel()

        future.add_done_callback(done)
        return job, future

    async def run(self, fn: Callable[[Job], T], *, bound: float, what: str) -> T:
        """``fn(job)`` on the worker within ``bound`` seconds. A timeout is an ``APITimeoutError``
        (retryable); an unexpected exception an ``APIError`` naming ``what``; ours pass through."""
        job, future = self.submit(fn)
        try:
            return await asyncio.wait_for(future, bound)
        except TimeoutError as exc:
            job.cancel()
            raise APITimeoutError(f"{what} took over {bound:g} s") from exc
        except asyncio.CancelledError:
            job.cancel()
            raise
        except JobCancelled as exc:
            raise APIError(f"{what} was cancelled", retryable=True) from exc
        except ApplianceError:
            raise
        except Exception as exc:
            raise APIError(f"{what} failed: {exc}", retryable=False) from exc

    def close(self) -> None:
        """Drop queued jobs and wait for the running one to end."""
        self._executor.shutdown(wait=True, cancel_futures=True)
