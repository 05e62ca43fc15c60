"""Kitchen timers: they ring when due, are kept in the conversation record's SQLite file, ring after a restart
(late, and saying so), and are cancelled by label. The wall clock is a fake the tests move forward."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from appliance.intents.timers import (
    Timer,
    TimerClock,
    TimerDurationError,
    TimerError,
    TimerStore,
    TooManyTimersError,
)
from appliance.service.record import RECORD_FILE, ConversationRecord

START = 1_800_000_000.0
NAP = 0.005
"""How often the timer tasks look at the fake clock."""
WAIT = 2.0
"""The longest a test waits for a ring (a failure, not a pause: rings come within a few naps)."""


class FakeClock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Bell:
    """An ``on_ring`` that keeps what rang."""

    def __init__(self) -> None:
        self.rung: list[tuple[Timer, float]] = []
        self.changed = asyncio.Event()

    async def __call__(self, timer: Timer, late_by: float) -> None:
        self.rung.append((timer, late_by))
        self.changed.set()

    async def wait_for(self, count: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.rung) < count:
                self.changed.clear()
                await self.changed.wait()

    @property
    def labels(self) -> list[str | None]:
        return [t.label for t, _ in self.rung]


def store_in(tmp_path: Path) -> TimerStore:
    return TimerStore(tmp_path / RECORD_FILE)


def test_a_timer_rings_when_the_clock_reaches_it_and_is_then_deleted(tmp_path: Path) -> None:
    store, clock, bell = store_in(tmp_path), FakeClock(), Bell()

    async def go() -> None:
        timers = TimerClock(store, bell, clock=clock, nap=NAP)
        await timers.start()
        timer = await timers.add(300, "pasta")
        assert [t.id for t in store.list()] == [timer.id]  # stored before "Timer set" is said
        clock.now += 299
        await asyncio.sleep(0.03)
        assert bell.rung == []
        assert timers.left()[0].remaining(timers.now()) == pytest.approx(1)
        clock.now += 1.01
        await bell.wait_for(1)
        assert bell.rung[0][0] == timer and bell.rung[0][1] < 1
        assert timers.left() == []
        await timers.close()
        assert store.list() == []  # the rung timer is deleted

    asyncio.run(go())
    store.close()


def test_timers_ring_after_a_restart_and_a_due_one_says_how_late(tmp_path: Path) -> None:
    clock, bell = FakeClock(), Bell()

    async def before() -> None:
        timers = TimerClock(store_in(tmp_path), bell, clock=clock, nap=NAP)
        await timers.start()
        await timers.add(60, "pasta")
        await timers.add(600)
        await timers.close()  # the daemon stops: the timers stay stored

    async def after() -> None:
        store = store_in(tmp_path)
        timers = TimerClock(store, bell, clock=clock, nap=NAP)
        await timers.start()
        await bell.wait_for(1)
        [(rung, late_by)] = bell.rung
        assert rung.label == "pasta" and late_by == pytest.approx(140)
        [waiting] = timers.left()
        assert waiting.seconds == 600 and waiting.remaining(clock()) == pytest.approx(400)
        await timers.close()
        assert [t.id for t in store.list()] == [waiting.id]
        store.close()

    asyncio.run(before())
    assert bell.rung == []
    clock.now += 200  # down for 200 s: the pasta timer fell due 140 s ago
    asyncio.run(after())


def test_timers_live_in_the_conversation_record_and_an_old_record_gains_the_table(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / RECORD_FILE)
    old.executescript(
        "CREATE TABLE conversations (id TEXT PRIMARY KEY, started_at REAL NOT NULL, last_at REAL NOT NULL);"
        "CREATE TABLE items (id TEXT PRIMARY KEY, conversation TEXT NOT NULL, seq INTEGER NOT NULL,"
        " created_at REAL NOT NULL, doc TEXT NOT NULL);"
    )
    old.close()
    record = ConversationRecord.in_dir(tmp_path)
    store = TimerStore(record.path)
    store.add(Timer("timer_1", 60.0, START, START + 60, "tea"))
    other = sqlite3.connect(record.path)  # another process (after a kill -9) sees it, committed
    assert other.execute("SELECT id, label, seconds, due_at FROM timers").fetchall() == [
        ("timer_1", "tea", 60.0, START + 60)
    ]
    other.close()
    assert store.clear() == 1 and store.list() == []
    store.close()
    record.close()


def test_cancel_by_label_stops_only_that_timer(tmp_path: Path) -> None:
    store, clock, bell = store_in(tmp_path), FakeClock(), Bell()

    async def go() -> None:
        timers = TimerClock(store, bell, clock=clock, nap=NAP)
        await timers.start()
        await timers.add(300, "pasta")
        await timers.add(600, "eggs")
        await timers.add(900)
        cancelled = await timers.cancel("Pasta")
        assert [t.label for t in cancelled] == ["pasta"]
        assert [t.label for t in timers.left()] == ["eggs", None]
        assert sorted(str(t.label) for t in store.list()) == ["None", "eggs"]
        assert await timers.cancel("soup") == []
        clock.now += 1000
        await bell.wait_for(2)
        await asyncio.sleep(0.02)  # time for the cancelled one to ring, if it were going to
        assert sorted(map(str, bell.labels)) == ["None", "eggs"]
        await timers.close()

    asyncio.run(go())
    store.close()


def test_cancel_by_duration_or_all(tmp_path: Path) -> None:
    store, clock, bell = store_in(tmp_path), FakeClock(), Bell()

    async def go() -> None:
        timers = TimerClock(store, bell, clock=clock, nap=NAP)
        await timers.start()
        await timers.add(300)
        await timers.add(600)
        await timers.add(900, "pasta")
        assert [t.seconds for t in await timers.cancel(seconds=300)] == [300]
        assert [t.seconds for t in await timers.cancel()] == [600, 900]
        assert timers.left() == [] and store.list() == []
        await timers.close()

    asyncio.run(go())
    store.close()


def test_a_timer_too_long_too_short_or_one_too_many_is_refused(tmp_path: Path) -> None:
    store = store_in(tmp_path)

    async def go() -> None:
        timers = TimerClock(store, Bell(), clock=FakeClock(), nap=NAP, max_timers=2)
        await timers.start()
        with pytest.raises(TimerDurationError, match="at most 24 hours"):
            await timers.add(24 * 3600 + 1)
        with pytest.raises(TimerDurationError, match="at least 1 second"):
            await timers.add(0)
        await timers.add(24 * 3600)
        await timers.add(60)
        with pytest.raises(TooManyTimersError, match="at most 2 timers"):
            await timers.add(60)
        assert len(store.list()) == 2
        await timers.close()

    asyncio.run(go())
    store.close()


def test_a_ring_cut_short_by_a_stop_rings_again_after_the_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    started = asyncio.Event()

    async def never_done(timer: Timer, late_by: float) -> None:
        started.set()
        await asyncio.Event().wait()

    async def before() -> None:
        store = store_in(tmp_path)
        timers = TimerClock(store, never_done, clock=clock, nap=NAP)
        await timers.start()
        await timers.add(60)
        clock.now += 60
        async with asyncio.timeout(WAIT):
            await started.wait()
        await timers.close()
        assert len(store.list()) == 1
        store.close()

    async def after() -> None:
        bell = Bell()
        store = store_in(tmp_path)
        timers = TimerClock(store, bell, clock=clock, nap=NAP)
        await timers.start()
        await bell.wait_for(1)
        await timers.close()
        assert store.list() == []
        store.close()

    asyncio.run(before())
    asyncio.run(after())


def test_a_failing_announcement_is_logged_and_the_timer_does_not_ring_forever(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, clock = store_in(tmp_path), FakeClock()
    calls: list[str] = []

    called = asyncio.Event()

    async def broken(timer: Timer, late_by: float) -> None:
        calls.append(timer.id)
        called.set()
        raise RuntimeError("no speaker")

    async def go() -> None:
        timers = TimerClock(store, broken, clock=clock, nap=NAP)
        await timers.start()
        await timers.add(5)
        clock.now += 5
        async with asyncio.timeout(WAIT):
            await called.wait()
        await timers.close()
        assert store.list() == []

    asyncio.run(go())
    store.close()
    assert len(calls) == 1
    assert any(r.getMessage() == "timer: on_ring failed" for r in caplog.records)


def test_a_store_that_cannot_be_read_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / RECORD_FILE
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(TimerError, match=r"timers in .* cannot be read"):
        TimerStore(path)
