"""The LLM fallback adapter: an ``LLM`` that asks its providers in order and moves on when one fails or stays
silent past ``attempt_timeout`` before its first token. Once a token has been handed on, the reply stays with
its provider: a later failure ends that reply (the user has heard part of it), and the next request starts on
a healthy provider."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import time
from collections.abc import Sequence

from appliance.llm.base import (
    LLM,
    ChatChunk,
    ChatContext,
    LLMCapabilities,
    LLMMetrics,
    LLMStream,
    Role,
    ToolChoice,
    ToolSpec,
)
from appliance.providers.attempt import FailedAttempt
from appliance.providers.pool import ProviderPool
from appliance.utils.aio import Channel, cancel_and_wait

logger = logging.getLogger(__name__)

ATTEMPT_TIMEOUT = 1.0
"""Seconds to the first token before the next provider is asked."""


async def probe_llm(llm: LLM) -> None:
    """A request of a few tokens: the provider is back when its first token arrives."""
    ctx = ChatContext()
    ctx.add_message(Role.USER, "Say OK.")
    stream = llm.chat(ctx)
    try:
        await anext(stream)
    finally:
        await stream.aclose()


class FallbackLLM(LLM):
    label = "fallback"

    def __init__(
        self,
        llms: Sequence[LLM],
        *,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
        max_failures: int = 3,
        cool_down: float = 30.0,
        labels: Sequence[str] | None = None,
    ) -> None:
        self.llms = list(llms)
        self.pool: ProviderPool[LLM] = ProviderPool(
            "llm",
            self.llms,
            list(labels) if labels is not None else [llm.label for llm in self.llms],
            attempt_timeout=attempt_timeout,
            max_failures=max_failures,
            cool_down=cool_down,
            probe=probe_llm,
        )
        self.capabilities = LLMCapabilities(
            streaming=all(llm.capabilities.streaming for llm in self.llms),
            tool_calling=all(llm.capabilities.tool_calling for llm in self.llms),
        )
        self._ids = itertools.count(1)

    def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto"
    ) -> FallbackLLMStream:
        stream = FallbackLLMStream(self.pool, chat_ctx.copy(), tuple(tools), f"fallback_{next(self._ids)}")
        stream.tool_choice = tool_choice
        return stream

    async def warm_up(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> None:
        for llm in self.llms:
            try:
                await llm.warm_up(chat_ctx, tools=tools)
            except Exception as exc:  # a provider that is down at start is tried (and skipped) per request
                logger.warning("provider warm-up failed", extra={"provider": llm.label, "error": str(exc)})

    async def prefill(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> None:
        for llm in self.llms:
            try:
                await llm.prefill(chat_ctx, tools=tools)
            except Exception as exc:  # only a head start: the request itself meets the failure
                logger.debug("prefill failed", extra={"provider": llm.label, "error": str(exc)})

    async def aclose(self) -> None:
        """Stop the probes, then close each provider's connections."""
        await self.pool.aclose()
        for engine in self.llms:
            await engine.aclose()

    def close(self) -> None:
        for llm in self.llms:
            llm.close()


class FallbackLLMStream(LLMStream):
    def __init__(self, pool: ProviderPool[LLM], ctx: ChatContext, tools: tuple[ToolSpec, ...], request_id: str) -> None:
        self._pool, self._ctx, self._tools = pool, ctx, tools
        self.tool_choice: ToolChoice = "auto"
        self.request_id = request_id
        self.metrics: LLMMetrics | None = None
        self.provider: str | None = None
        """The provider serving this reply, once its first token came."""
        self.failed_attempts: list[FailedAttempt] = []
        self._inner: LLMStream | None = None
        self._started = time.perf_counter()
        self._cancelled = False
        self._out: Channel[ChatChunk] = Channel()
        self._task = asyncio.create_task(self._run(), name=f"{request_id}-fallback")

    @property
    def text(self) -> str:
        return self._inner.text if self._inner is not None and self.provider is not None else ""

    async def __anext__(self) -> ChatChunk:
        return await self._out.__anext__()

    async def aclose(self) -> None:
        await cancel_and_wait(self._task)

    async def _run(self) -> None:
        try:
            await self._serve()
        except asyncio.CancelledError:
            self._cancelled = True
            raise
        except Exception as exc:
            self._out.fail(exc)
        finally:
            self._finish()
            self._out.close()

    async def _open(self, llm: LLM) -> tuple[LLMStream, ChatChunk | None]:
        """One try: the reply's stream and its first chunk (None: an empty reply, which is still an answer)."""
        choice: dict[str, ToolChoice] = {"tool_choice": "required"} if self.tool_choice == "required" else {}
        stream = llm.chat(self._ctx, tools=self._tools, **choice)
        try:
            return stream, await anext(stream, None)
        except BaseException:
            await stream.aclose()
            raise

    async def _serve(self) -> None:
        pool = self._pool
        index, (stream, first) = await pool.first_answer(self._open, self.failed_attempts)
        self._inner, self.provider = stream, pool.labels[index]
        start = time.perf_counter()
        try:
            if first is not None:
                self._out.send(first)
                async for chunk in stream:
                    self._out.send(chunk)
        except Exception as exc:
            pool.failed(index, exc, time.perf_counter() - start)
            raise  # part of it was handed on: no fallback within this reply
        finally:
            await stream.aclose()

    def _finish(self) -> None:
        inner = self._inner.metrics if self._inner is not None else None
        attempts = tuple(self.failed_attempts)
        lost = sum(a.seconds for a in attempts)  # the user waited through the failed tries too
        if inner is None:
            duration = time.perf_counter() - self._started
            inner = LLMMetrics(self.request_id, -1.0, duration, 0, 0, self._cancelled)
        else:
            ttft = inner.ttft + lost if inner.ttft >= 0 else inner.ttft
            inner = dataclasses.replace(inner, ttft=ttft, duration=inner.duration + lost)
        self.metrics = dataclasses.replace(inner, provider=self.provider or "", failed_attempts=attempts)
