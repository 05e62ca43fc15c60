"""The engines' worker: jobs in order, bounded, and cancelled at the engine."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from appliance.errors import APIError, APITimeoutError, AudioError
from appliance.utils.worker import Job, Worker


def test_a_job_cancelled_before_it_starts_never_runs() -> None:
    worker = Worker("test")
    release = threading.Event()
    ran: list[str] = []

    async def go() -> None:
        first = asyncio.create_task(worker.run(lambda job: release.wait(5), bound=5, what="first"))
        await asyncio.sleep(0.05)  # the first job holds the worker
        second = asyncio.create_task(worker.run(lambda job: ran.append("second"), bound=5, what="second"))
        await asyncio.sleep(0.05)
        second.cancel()
        await asyncio.sleep(0.01)  # the cancel lands (a task's cancel takes effect at its next step)
        release.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await second
        await worker.run(lambda job: ran.append("third"), bound=5, what="third")

    asyncio.run(go())
    worker.close()
    assert ran == ["third"]


def test_a_timeout_is_retryable_and_tells_the_running_job_to_stop() -> None:
    worker = Worker("test")
    stopped_after: list[float] = []

    def long(job: Job) -> None:
        start = time.monotonic()
        while not job.cancelled and time.monotonic() - start < 5:
            time.sleep(0.005)
        stopped_after.append(time.monotonic() - start)

    async def go() -> None:
        with pytest.raises(APITimeoutError) as caught:
            await worker.run(long, bound=0.1, what="the long job")
        assert caught.value.retryable and "the long job took over 0.1 s" in str(caught.value)
        await worker.run(lambda job: None, bound=1, what="next")  # waits only for the stop, not the 5 s

    asyncio.run(go())
    worker.close()
    assert stopped_after and stopped_after[0] < 0.5


def test_failures_come_out_as_the_api_error_family_and_ours_pass_through() -> None:
    worker = Worker("test")

    def broken(job: Job) -> None:
        raise ValueError("native library said no")

    def ours(job: Job) -> None:
        raise AudioError("no audio to transcribe")

    async def go() -> None:
        with pytest.raises(APIError) as caught:
            await worker.run(broken, bound=1, what="synthesis")
        assert not caught.value.retryable and "synthesis failed: native library said no" in str(caught.value)
        with pytest.raises(AudioError):
            await worker.run(ours, bound=1, what="transcription")

    asyncio.run(go())
    worker.close()


def test_a_job_sees_the_jobs_waiting_behind_it_and_a_cancelled_one_leaves_the_queue() -> None:
    worker = Worker("test")
    release = threading.Event()
    seen: list[int] = []

    def yielding(job: Job) -> None:  # what a prefill does between its steps
        release.wait(5)
        seen.append(worker.waiting)

    async def go() -> None:
        first = asyncio.create_task(worker.run(yielding, bound=5, what="first"))
        await asyncio.sleep(0.05)
        assert worker.waiting == 0
        queued = asyncio.create_task(worker.run(lambda job: None, bound=5, what="queued"))
        await asyncio.sleep(0.05)
        assert worker.waiting == 1
        queued.cancel()
        await asyncio.sleep(0.01)
        assert worker.waiting == 0  # it will never start, so it is not waiting
        second = asyncio.create_task(worker.run(lambda job: None, bound=5, what="second"))
        await asyncio.sleep(0.05)
        release.set()
        await first
        await second
        assert worker.waiting == 0

    asyncio.run(go())
    worker.close()
    assert seen == [1]
