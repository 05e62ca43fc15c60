"""Kitchen timers that ring even across a restart.

Each timer is a row of the ``timers`` table in the conversation record's SQLite file, committed with
``synchronous=FULL`` before "Timer set" is said, and deleted once it has rung. Due times are wall-clock
(``time.time()``), so a timer that fell due while the daemon was down rings as soon as it starts again, told how
late it is. The clock is looked at again at least every ``NAP`` seconds, so a wall clock set right after boot
(a board without a battery-backed clock gets the time from NTP) is noticed within that.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import functools
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import ApplianceError
from appliance.service.record import TIMERS_SCHEMA, connect
from appliance.utils.aio import cancel_and_wait

logger = logging.getLogger(__name__)

MAX_SECONDS = 24 * 3600.0
"""The longest timer."""
MAX_TIMERS = 10
"""The most timers running at once."""
MIN_SECONDS = 1.0
NAP = 1.0
"""The longest sleep between two looks at the clock."""


class TimerError(ApplianceError):
    """A timer cannot be set, or the timers cannot be kept."""


class TimerDurationError(TimerError):
    """The duration asked for is too short or too long."""


class TooManyTimersError(TimerError):
    """As many timers as allowed are running already."""


@dataclass(frozen=True)
class Timer:
    id: str
    seconds: float
    """The duration it was set for."""
    created_at: float
    """When it was set (wall clock)."""
    due_at: float
    """When it rings (wall clock)."""
    label: str | None = None
    """Its name ("pasta"), if it was given one."""

    def remaining(self, now: float) -> float:
        """Seconds left at ``now`` (0 once due)."""
        return max(0.0, self.due_at - now)


class TimerStore:
    """The timers in SQLite, each change committed as it is made. Blocking: ``TimerClock`` calls it from its
    own thread."""

    def __init__(self, path: Path) -> None:
        """``path``: the conversation record's file (``ConversationRecord.path``), or any SQLite file."""
        self.path = path
        try:
            self._db = _connect(path)
        except sqlite3.Error as exc:
            raise TimerError(f"timers in {path} cannot be read ({exc})") from exc
        self._lock = threading.Lock()

    def add(self, timer: Timer) -> None:
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO timers (id, label, seconds, created_at, due_at) VALUES (?, ?, ?, ?, ?)",
                (timer.id, timer.label, timer.seconds, timer.created_at, timer.due_at),
            )

    def remove(self, *timer_ids: str) -> None:
        with self._lock, self._db:
            self._db.executemany("DELETE FROM timers WHERE id = ?", [(i,) for i in timer_ids])

    def list(self) -> builtins.list[Timer]:
        """Every stored timer, the next due first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, seconds, created_at, due_at, label FROM timers ORDER BY due_at"
            ).fetchall()
        return [Timer(i, seconds, created, due, label) for i, seconds, created, due, label in rows]

    def clear(self) -> int:
        with self._lock, self._db:
            return self._db.execute("DELETE FROM timers").rowcount

    def close(self) -> None:
        with self._lock:
            self._db.close()


Ring = Callable[[Timer, float], Awaitable[None]]
"""Called with a timer when it is due, and how many seconds late it rings (0 unless the daemon was down)."""


class TimerClock:
    """The timers running: one named task each, which sleeps until its timer is due, calls ``on_ring`` and then
    deletes it from the store. A timer whose ``on_ring`` was cut short by ``close()`` stays stored and rings
    again at the next start."""

    def __init__(
        self,
        store: TimerStore,
        on_ring: Ring,
        *,
        clock: Callable[[], float] = time.time,
        max_seconds: float = MAX_SECONDS,
        max_timers: int = MAX_TIMERS,
        nap: float = NAP,
    ) -> None:
        """``clock``: the wall clock (seconds since the epoch). The store is not closed by ``close()``."""
        self.max_seconds = max_seconds
        self.max_timers = max_timers
        self.failed_writes = 0
        """Store writes that failed (their timers ring all the same, but not after a restart)."""
        self._store = store
        self._on_ring = on_ring
        self._clock = clock
        self._nap = nap
        self._pending: dict[str, Timer] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="timers")
        """One thread, so the store sees the changes in the order they were made."""

    def now(self) -> float:
        return self._clock()

    async def start(self) -> None:
        """Schedule the stored timers; those that fell due while the daemon was down ring now."""
        try:
            stored = await self._in_thread(self._store.list)
        except sqlite3.Error as exc:
            logger.error("timers: the stored timers cannot be read; none restored", extra={"error": str(exc)})
            return
        for timer in stored:
            self._schedule(timer)
        if stored:
            logger.info("timers restored", extra={"timers": len(stored)})

    async def add(self, seconds: float, label: str | None = None) -> Timer:
        """Set a timer for ``seconds``; it is stored before this returns."""
        if seconds < MIN_SECONDS:
            raise TimerDurationError(f"a timer must be at least {MIN_SECONDS:g} second long, not {seconds:g}")
        if seconds > self.max_seconds:
            raise TimerDurationError(
                f"a timer can be at most {self.max_seconds / 3600:g} hours long, not {seconds / 3600:.4g}"
            )
        if len(self._pending) >= self.max_timers:
            raise TooManyTimersError(f"at most {self.max_timers} timers can run at once")
        now = self._clock()
        timer = Timer(f"timer_{uuid.uuid4().hex[:12]}", seconds, now, now + seconds, label)
        self._schedule(timer)
        await self._write(self._store.add, timer)
        return timer

    def left(self) -> list[Timer]:
        """The timers running, the next due first (``Timer.remaining(clock.now())`` says how long each has)."""
        return sorted(self._pending.values(), key=lambda t: t.due_at)

    async def cancel(self, label: str | None = None, *, seconds: float | None = None) -> list[Timer]:
        """Cancel the timers with this label and/or duration (neither: all of them); the ones cancelled."""
        gone = [
            t
            for t in self.left()
            if (label is None or (t.label or "").lower() == label.lower())
            and (seconds is None or abs(t.seconds - seconds) < 0.5)
        ]
        for timer in gone:
            del self._pending[timer.id]
        await cancel_and_wait(*(self._tasks.get(t.id) for t in gone))
        if gone:
            await self._write(self._store.remove, *(t.id for t in gone))
        return gone

    async def close(self) -> None:
        """Stop every timer task (the timers stay stored, to ring after the next start); the changes under way
        are written before it returns."""
        await cancel_and_wait(*self._tasks.values())
        self._pending.clear()
        await asyncio.to_thread(self._io.shutdown, wait=True)

    def _schedule(self, timer: Timer) -> None:
        if timer.id in self._pending:
            return
        self._pending[timer.id] = timer
        task = asyncio.create_task(self._run(timer), name=f"timer-{timer.id}")
        self._tasks[timer.id] = task
        task.add_done_callback(functools.partial(self._finished, timer.id))

    def _finished(self, timer_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.pop(timer_id, None)
        if not task.cancelled() and task.exception() is not None:
            logger.error("timer task failed", exc_info=task.exception(), extra={"task": task.get_name()})

    async def _run(self, timer: Timer) -> None:
        while (left := timer.due_at - self._clock()) > 0:  # noqa: ASYNC110 - the wall clock may be set right meanwhile
            await asyncio.sleep(min(left, self._nap))
        if self._pending.pop(timer.id, None) is None:
            return  # cancelled while it fell due
        late_by = max(0.0, self._clock() - timer.due_at)
        logger.info("timer rings", extra={"timer": timer.id, "late_by": round(late_by, 1)})
        try:
            await self._on_ring(timer, late_by)
        except Exception:  # a failing announcement must not leave the timer to ring at every start
            logger.exception("timer: on_ring failed", extra={"timer": timer.id})
        await self._write(self._store.remove, timer.id)

    async def _write(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            await self._in_thread(fn, *args)
        except sqlite3.Error as exc:  # a full or read-only card: the timer still rings, but not after a restart
            self.failed_writes += 1
            logger.error("timers: a change not stored", extra={"error": str(exc), "path": str(self._store.path)})

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        # shielded: a change handed to the thread is made even if the task waiting for it is cancelled
        return await asyncio.shield(asyncio.get_running_loop().run_in_executor(self._io, functools.partial(fn, *args)))


def _connect(path: Path) -> sqlite3.Connection:
    return connect(path, TIMERS_SCHEMA, "timers")
