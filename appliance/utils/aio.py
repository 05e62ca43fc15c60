"""Asyncio helpers: named tasks that are always awaited, and the one stream shape of every stage."""

from __future__ import annotations

import abc
import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from appliance.utils.worker import Job, Worker

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


class TaskSet:
    """Background tasks that are kept (never fire-and-forget): a failure is logged, ``changed`` is set when
    one ends."""

    def __init__(self, changed: asyncio.Event | None = None) -> None:
        self.tasks: set[asyncio.Task[None]] = set()
        self.changed = changed or asyncio.Event()

    def __bool__(self) -> bool:
        return bool(self.tasks)

    def add(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.changed.set()
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception(), extra={"task": task.get_name()})


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


class StageStream(abc.ABC, Generic[I, E]):
    """The one stream shape of every stage: ``push_frame()``, ``flush()``, ``end_input()``, ``aclose()``, and
    ``async for event in stream``. A wrapper (fallback, echo canceller, a scripted test engine) implements the
    same verbs, so the agent never knows what is behind it."""

    @abc.abstractmethod
    def push_frame(self, item: I) -> None: ...

    @abc.abstractmethod
    def flush(self) -> None:
        """Mark a segment boundary: the stage finishes what it holds before taking more input."""

    @abc.abstractmethod
    def end_input(self) -> None:
        """No more input: the stage emits what remains and the iteration ends."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    def __aiter__(self) -> AsyncIterator[E]:
        return self

    @abc.abstractmethod
    async def __anext__(self) -> E: ...


class WorkerStream(StageStream[I, E]):
    """A stream whose work runs on an engine's ``Worker``, each batch bounded by ``timeout`` seconds.

    Subclasses implement ``_process(items, flush)`` (runs in the worker thread, so native inference never
    blocks the event loop) and may override ``_finish()`` for the end of input. Items pushed while the worker
    is busy are handed over together, so a fast producer (a file) costs one thread hop per batch rather than
    one per frame. A batch that fails or overruns its bound ends the stream with that error.
    """

    def __init__(self, worker: Worker, name: str, *, timeout: float) -> None:
        self._worker = worker
        self._timeout = timeout
        self._name = name
        self._input: asyncio.Queue[I | _Flush | _End] = asyncio.Queue()
        self._output: Channel[E] = Channel()
        self._input_ended = False
        self._closed = False
        self._task = asyncio.create_task(self._run(), name=name)

    def push_frame(self, item: I) -> None:
        self._check_open()
        self._input.put_nowait(item)

    def flush(self) -> None:
        self._check_open()
        self._input.put_nowait(_Flush())

    def end_input(self) -> None:
        self._check_open()
        self._input_ended = True
        self._input.put_nowait(_End())

    async def aclose(self) -> None:
        self._closed = True
        await cancel_and_wait(self._task)

    def _check_open(self) -> None:
        if self._closed or self._input_ended:
            raise RuntimeError(f"{type(self).__name__}: input already ended or stream closed")

    async def __anext__(self) -> E:
        return await self._output.__anext__()

    async def _run(self) -> None:
        try:
            while True:
                first = await self._input.get()
                batch: list[I | _Flush | _End] = [first]
                while not self._input.empty() and not isinstance(batch[-1], _Flush | _End):
                    batch.append(self._input.get_nowait())
                items = [b for b in batch if not isinstance(b, _Flush | _End)]
                flush = isinstance(batch[-1], _Flush | _End)
                if items or flush:
                    events = await self._worker.run(
                        functools.partial(self._batch, items, flush), bound=self._timeout, what=self._name
                    )
                    for event in events:
                        self._output.send(event)
                if isinstance(batch[-1], _End):
                    finish = await self._worker.run(lambda job: self._finish(), bound=self._timeout, what=self._name)
                    for event in finish:
                        self._output.send(event)
                    break
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the consumer sees the failure instead of a silent end
            self._output.fail(exc)
        finally:
            self._output.close()

    def _batch(self, items: list[I], flush: bool, job: Job) -> list[E]:
        return self._process(items, flush)

    def _process(self, items: list[I], flush: bool) -> list[E]:
        raise NotImplementedError

    def _finish(self) -> list[E]:
        return []
