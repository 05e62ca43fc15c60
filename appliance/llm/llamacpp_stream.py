"""One reply of the llama.cpp engine as an async stream: text and calls from the engine's worker, bounded
waits, and a close that stops generation within one token."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from appliance.errors import APIError, APITimeoutError
from appliance.llm.base import ChatChunk, ChatContext, FunctionCall, LLMMetrics, LLMStream, ToolSpec
from appliance.utils.worker import JobCancelled

if TYPE_CHECKING:
    from appliance.llm.llamacpp import LlamaCppLLM

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 5.0
"""Seconds a stopped request may take to let go of the model."""
TOOLS_ALLOWANCE = 20.0
"""Seconds added to the first-token bound when tools are offered: their description is read and a call is
decoded under the grammar before anything comes (a few seconds on a small device, more under load)."""


class LlamaStream(LLMStream):
    """Async iteration over the reply; ``aclose()`` stops generation within one token."""

    def __init__(
        self,
        llm: LlamaCppLLM,
        chat_ctx: ChatContext,
        tools: Sequence[ToolSpec],
        request_id: str,
        *,
        required: bool = False,
    ) -> None:
        self._llm = llm
        self.request_id = request_id
        self.metrics: LLMMetrics | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._text: list[str] = []
        self._started = time.perf_counter()
        self._tools = bool(tools)
        self._job, self._future = llm._worker.submit(
            lambda job: llm.generate(chat_ctx, tools, job, self._on_text, self._on_call, required=required)
        )
        self._future.add_done_callback(self._on_done)

    @property
    def text(self) -> str:
        return "".join(self._text)

    def _on_text(self, delta: str) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, ("text", delta))

    def _on_call(self, call: FunctionCall) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, ("call", call))

    def _on_done(self, future: asyncio.Future[tuple[float, int, int, int]]) -> None:
        ttft, completion, prompt, cached = -1.0, len(self._text), 0, 0
        if future.cancelled() or isinstance(future.exception(), JobCancelled):
            self._queue.put_nowait(("end", None))
        elif future.exception() is not None:
            self._queue.put_nowait(("error", future.exception()))
        else:
            ttft, completion, prompt, cached = future.result()
            self._queue.put_nowait(("end", None))
        duration = time.perf_counter() - self._started
        cancelled = self._job.cancelled
        self.metrics = LLMMetrics(self.request_id, ttft, duration, prompt, completion, cancelled, cached_tokens=cached)

    async def __anext__(self) -> ChatChunk:
        s = self._llm.settings
        first = s.first_token_timeout + (TOOLS_ALLOWANCE if self._tools else 0.0)
        timeout = s.token_timeout if self._text else first
        try:
            kind, value = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError as exc:
            self._job.cancel()
            raise APITimeoutError(f"the LLM produced nothing for {timeout:g} s") from exc
        if kind == "end":
            self._queue.put_nowait((kind, value))
            raise StopAsyncIteration
        if kind == "error":
            self._queue.put_nowait(("end", None))
            raise APIError(f"llama.cpp failed: {value}", retryable=False) from value
        if kind == "call":
            return ChatChunk("", self.request_id, tool_calls=(value,))
        self._text.append(value)
        return ChatChunk(value, self.request_id)

    async def aclose(self) -> None:
        """Stop generating (within one token) and wait, bounded, for the worker to let go."""
        self._job.cancel()
        if self._future.done():
            return
        done, _ = await asyncio.wait({self._future}, timeout=CLOSE_TIMEOUT)
        if not done:
            logger.warning("llm worker still busy after cancel", extra={"request_id": self.request_id})
