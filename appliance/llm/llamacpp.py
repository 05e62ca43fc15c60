"""Local LLM through llama.cpp (llama-cpp-python); the chat template comes from the GGUF."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.errors import APIError, APITimeoutError, ConfigError, ModelError
from appliance.llm.base import LLM, ChatChunk, ChatContext, LLMCapabilities, LLMMetrics, LLMStream, ToolSpec
from appliance.utils.worker import Job, JobCancelled, Worker

logger = logging.getLogger(__name__)

WARM_UP_TIMEOUT = 120.0
"""Seconds evaluating the instructions may take (a big model on a Pi takes a while)."""
CLOSE_TIMEOUT = 5.0
"""Seconds a stopped request may take to let go of the model."""


@dataclass(frozen=True)
class LlamaSettings:
    """How llama.cpp runs and samples."""

    n_ctx: int = 2048
    threads: int = 0
    """0 takes the number of CPU cores."""
    max_tokens: int = 160
    """Upper bound of a reply, in tokens: a spoken answer is short."""
    temperature: float = 0.3
    top_p: float = 0.9
    repeat_penalty: float = 1.15
    first_token_timeout: float = 10.0
    """Seconds to wait for the first token before the request fails."""
    token_timeout: float = 5.0
    """Seconds to wait between two tokens before the request fails."""

    def __post_init__(self) -> None:
        if self.n_ctx < 256:
            raise ConfigError(f"llm.n_ctx = {self.n_ctx} is too small; use at least 256 tokens")
        if not 1 <= self.max_tokens <= self.n_ctx:
            raise ConfigError(f"llm.max_tokens = {self.max_tokens} is out of range; use 1 to llm.n_ctx ({self.n_ctx})")
        if not 0.0 <= self.temperature <= 2.0:
            raise ConfigError(f"llm.temperature = {self.temperature} is out of range; use 0 to 2")
        if not 0 <= self.threads <= 64:
            raise ConfigError(f"llm.threads = {self.threads} is out of range; use 0 (automatic) to 64")
        if not 0.0 < self.top_p <= 1.0:
            raise ConfigError(f"llm.top_p = {self.top_p} is out of range; use more than 0 and at most 1")
        if not 1.0 <= self.repeat_penalty <= 2.0:
            raise ConfigError(f"llm.repeat_penalty = {self.repeat_penalty} is out of range; use 1 to 2")
        for name in ("first_token_timeout", "token_timeout"):
            value = getattr(self, name)
            if not 0.1 <= value <= 300:
                raise ConfigError(f"llm.{name} = {value} is out of range; use 0.1 to 300 seconds")


class LlamaCppLLM(LLM):
    """One model, one request at a time on its worker (a new request waits for the previous one to stop,
    which it does within one token)."""

    capabilities = LLMCapabilities(streaming=True, tool_calling=False)
    label = "llama.cpp"

    def __init__(self, model_path: Path, settings: LlamaSettings | None = None) -> None:
        import llama_cpp

        self.settings = settings or LlamaSettings()
        self.model_path = model_path
        try:
            self._llama = llama_cpp.Llama(
                str(model_path),
                n_ctx=self.settings.n_ctx,
                n_threads=self.settings.threads or os.cpu_count() or 1,
                verbose=False,
            )
        except ValueError as exc:
            raise ModelError(
                f"llama.cpp could not load {model_path} ({exc}); run `appliance-cli models verify`"
            ) from exc
        self._worker = Worker("llm")
        self._requests = 0

    def chat(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> LlamaStream:
        self._requests += 1
        return LlamaStream(self, chat_ctx.copy(), f"llm_{self._requests}")

    async def warm_up(self, chat_ctx: ChatContext) -> None:
        """Evaluate the instructions once so the first real request reuses the cached prefix."""
        ctx = chat_ctx.copy()
        await self._worker.run(lambda job: self._warm_up(ctx), bound=WARM_UP_TIMEOUT, what="LLM warm-up")

    def _warm_up(self, chat_ctx: ChatContext) -> None:
        tokens = self._prompt_tokens(chat_ctx)
        self._llama.reset()  # type: ignore[no-untyped-call]
        self._llama.eval(tokens)

    def _prompt_tokens(self, chat_ctx: ChatContext) -> list[int]:
        prompt = self._llama.tokenize(self._render(chat_ctx).encode("utf-8"), add_bos=False, special=True)
        return list(prompt)

    def _render(self, chat_ctx: ChatContext) -> str:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{self.model_path} has no chat template in its metadata")
        fmt = Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(self._llama.token_eos()),
            bos_token=self._token_text(self._llama.token_bos()),
        )
        result = fmt(messages=chat_ctx.to_openai(native_tools=self.capabilities.tool_calling))  # type: ignore[arg-type]
        return str(result.prompt)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def generate(self, chat_ctx: ChatContext, job: Job, on_text: Callable[[str], None]) -> tuple[float, int, int]:
        """Blocking generation on the worker: each piece of text to ``on_text``; stops within one token of
        ``job`` being cancelled. Returns (seconds to the first text, completion tokens, prompt tokens)."""
        s = self.settings
        start = time.perf_counter()
        ttft, completion = -1.0, 0
        stream = self._llama.create_chat_completion(
            messages=chat_ctx.to_openai(native_tools=self.capabilities.tool_calling),  # type: ignore[arg-type]
            stream=True,
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            top_p=s.top_p,
            repeat_penalty=s.repeat_penalty,
        )
        try:
            for chunk in stream:
                if job.cancelled:
                    break
                delta = chunk["choices"][0]["delta"].get("content")  # type: ignore[index,union-attr]
                if not delta:
                    continue
                completion += 1
                if ttft < 0:
                    ttft = time.perf_counter() - start
                on_text(str(delta))
        finally:
            stream.close()  # type: ignore[union-attr]
        # counted after the reply, so the count never delays the first token
        return ttft, completion, len(self._prompt_tokens(chat_ctx))

    def close(self) -> None:
        self._worker.close()
        self._llama.close()


class LlamaStream(LLMStream):
    """Async iteration over the reply; ``aclose()`` stops generation within one token."""

    def __init__(self, llm: LlamaCppLLM, chat_ctx: ChatContext, request_id: str) -> None:
        self._llm = llm
        self.request_id = request_id
        self.metrics: LLMMetrics | None = None
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._text: list[str] = []
        self._started = time.perf_counter()
        self._job, self._future = llm._worker.submit(lambda job: llm.generate(chat_ctx, job, self._on_text))
        self._future.add_done_callback(self._on_done)

    @property
    def text(self) -> str:
        return "".join(self._text)

    def _on_text(self, delta: str) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, ("text", delta))

    def _on_done(self, future: asyncio.Future[tuple[float, int, int]]) -> None:
        ttft, completion, prompt = -1.0, len(self._text), 0
        if future.cancelled() or isinstance(future.exception(), JobCancelled):
            self._queue.put_nowait(("end", None))
        elif future.exception() is not None:
            self._queue.put_nowait(("error", future.exception()))
        else:
            ttft, completion, prompt = future.result()
            self._queue.put_nowait(("end", None))
        duration = time.perf_counter() - self._started
        self.metrics = LLMMetrics(self.request_id, ttft, duration, prompt, completion, self._job.cancelled)

    async def __anext__(self) -> ChatChunk:
        s = self._llm.settings
        timeout = s.token_timeout if self._text else s.first_token_timeout
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
