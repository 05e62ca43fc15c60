"""Asyncio helpers: named tasks that are always awaited, and the one stream shape of every stage."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")
E = TypeVar("E")
I = TypeVar("I")  # noqa: E741 - the input item type

CANCEL_TIMEOUT = 2.0
"""How long a cancelled task may take to finish its clean-up before we stop waiting."""


async def cancel_and_wait(*tasks: asyncio.Task[Any] | None, wait: float = CANCEL_TIMEOUT) -> None:
    """Cancel the tasks and wait (bounded) until they have really finished."""
    pending = [t for t in tasks if t is not None and not t.done()]
    for task in pending:
        task.cancel()
    if not pending:
        return
    done, still = await asyncio.wait(pending, timeout=wait)
    for task in still:
        logger.warning("task did not finish after cancel", extra={"task": task.get_name()})
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            logger.debug("cancelled task had failed", exc_info=task.exception())


class _End:
    """Marks the end of the input of a stream."""


class _Flush:
    """Marks a flush point in the input of a stream."""


class Channel(Generic[T]):
    """The output side of a stream: items read with ``async for``, ended by ``close()``.

    ``fail(exc)`` hands a producer's error to the reader, so a failure is raised where the events
    are read, never turned into a silent end of stream.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[T | _End | BaseException] = asyncio.Queue()

    def send(self, item: T) -> None:
        self._queue.put_nowait(item)

    def fail(self, exc: BaseException) -> None:
        self._queue.put_nowait(exc)

    def close(self) -> None:
        self._queue.put_nowait(_End())

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._queue.get()
        if isinstance(item, _End):
            self._queue.put_nowait(item)  # later reads end too
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item


class EventStream(Generic[I, E]):
    """Base of the streaming stages: push input, iterate over typed events.

    Subclasses implement ``_process(items, flush)`` (runs in the stage's worker thread, so native
    inference never blocks the event loop) and may override ``_finish()`` for the end of input.
    Items pushed while the worker is busy are handed over together, so a fast producer (a file)
    costs one thread hop per batch rather than one per frame.
    """

    def __init__(self, executor: concurrent.futures.Executor, name: str) -> None:
        self._executor = executor
        self._input: asyncio.Queue[I | _Flush | _End] = asyncio.Queue()
        self._output: Channel[E] = Channel()
        self._input_ended = False
        self._closed = False
        self._task = asyncio.create_task(self._run(), name=name)

    def push_frame(self, item: I) -> None:
        self._check_open()
        self._input.put_nowait(item)

    def flush(self) -> None:
        """Mark a segment boundary: the stage finishes what it holds before taking more input."""
        self._check_open()
        self._input.put_nowait(_Flush())

    def end_input(self) -> None:
        """No more input: the stage emits what remains and the iteration ends."""
        self._check_open()
        self._input_ended = True
        self._input.put_nowait(_End())

    async def aclose(self) -> None:
        self._closed = True
        await cancel_and_wait(self._task)

    def _check_open(self) -> None:
        if self._closed or self._input_ended:
            raise RuntimeError(f"{type(self).__name__}: input already ended or stream closed")

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    async def __anext__(self) -> E:
        return await self._output.__anext__()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                first = await self._input.get()
                batch: list[I | _Flush | _End] = [first]
                while not self._input.empty() and not isinstance(batch[-1], _Flush | _End):
                    batch.append(self._input.get_nowait())
                items = [b for b in batch if not isinstance(b, _Flush | _End)]
                flush = isinstance(batch[-1], _Flush | _End)
                if items or flush:
                    events = await loop.run_in_executor(self._executor, self._process, items, flush)
                    for event in events:
                        self._output.send(event)
                if isinstance(batch[-1], _End):
                    for event in await loop.run_in_executor(self._executor, self._finish):
                        self._output.send(event)
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the consumer sees the failure instead of a silent end
            self._output.fail(exc)
        finally:
            self._output.close()

    def _process(self, items: list[I], flush: bool) -> list[E]:
        raise NotImplementedError

    def _finish(self) -> list[E]:
        return []
