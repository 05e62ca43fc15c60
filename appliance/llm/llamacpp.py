"""Local LLM through llama.cpp (llama-cpp-python); the chat template comes from the GGUF."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp

from appliance.errors import ConfigError, ModelError, ProviderError
from appliance.llm.base import ChatChunk, ChatContext, LLMMetrics
from appliance.utils.aio import cancel_and_wait

logger = logging.getLogger(__name__)
_request_ids = itertools.count(1)


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


class LlamaCppLLM:
    """One model, one request at a time (a new request waits for the previous one to stop)."""

    def __init__(self, model_path: Path, settings: LlamaSettings | None = None) -> None:
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
        self._busy = threading.Lock()

    def chat(self, chat_ctx: ChatContext) -> LLMStream:
        return LLMStream(self, chat_ctx.copy())

    def warm_up(self, chat_ctx: ChatContext) -> None:
        """Evaluate the instructions once so the first real request reuses the cached prefix."""
        with self._busy:
            tokens = self._prompt_tokens(chat_ctx)
            self._llama.reset()  # type: ignore[no-untyped-call]
            self._llama.eval(tokens)

    def _prompt_tokens(self, chat_ctx: ChatContext) -> list[int]:
        prompt = self._llama.tokenize(self._render(chat_ctx).encode("utf-8"), add_bos=False, special=True)
        return list(prompt)

    def _render(self, chat_ctx: ChatContext) -> str:
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise ModelError(f"{self.model_path} has no chat template in its metadata")
        fmt = llama_cpp.llama_chat_format.Jinja2ChatFormatter(
            template=template,
            eos_token=self._token_text(self._llama.token_eos()),
            bos_token=self._token_text(self._llama.token_bos()),
        )
        result = fmt(messages=chat_ctx.to_openai())  # type: ignore[arg-type]
        return str(result.prompt)

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llama.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def close(self) -> None:
        self._llama.close()


class LLMStream:
    """Async iteration over the reply; ``aclose()`` stops generation within one token."""

    def __init__(self, llm: LlamaCppLLM, chat_ctx: ChatContext) -> None:
        self._llm = llm
        self._ctx = chat_ctx
        self.request_id = f"llm_{next(_request_ids)}"
        self.metrics: LLMMetrics | None = None
        self._stop = threading.Event()
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._thread_done = asyncio.Event()
        self._worker = threading.Thread(target=self._generate, name=f"llm-{self.request_id}", daemon=True)
        self._worker.start()
        self._text: list[str] = []

    @property
    def text(self) -> str:
        """What has been generated so far."""
        return "".join(self._text)

    def _put(self, kind: str, value: Any) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (kind, value))

    def _generate(self) -> None:
        s = self._llm.settings
        start = time.perf_counter()
        ttft = -1.0
        completion = 0
        prompt_tokens = 0
        end: float | None = None
        try:
            with self._llm._busy:
                llama = self._llm._llama
                stream = llama.create_chat_completion(
                    messages=self._ctx.to_openai(),  # type: ignore[arg-type]
                    stream=True,
                    max_tokens=s.max_tokens,
                    temperature=s.temperature,
                    top_p=s.top_p,
                    repeat_penalty=s.repeat_penalty,
                )
                try:
                    for chunk in stream:
                        if self._stop.is_set():
                            break
                        delta = chunk["choices"][0]["delta"].get("content")  # type: ignore[index,union-attr]
                        if not delta:
                            continue
                        completion += 1
                        if ttft < 0:
                            ttft = time.perf_counter() - start
                        self._put("text", delta)
                finally:
                    stream.close()  # type: ignore[union-attr]
                    end = time.perf_counter()
                # counted after the reply, so the count never delays the first token
                prompt_tokens = len(self._llm._prompt_tokens(self._ctx))
        except Exception as exc:  # handed to the consumer, never swallowed
            self._put("error", exc)
        finally:
            duration = (end or time.perf_counter()) - start
            self.metrics = LLMMetrics(self.request_id, ttft, duration, prompt_tokens, completion, self._stop.is_set())
            self._put("end", None)
            self._loop.call_soon_threadsafe(self._thread_done.set)

    def __aiter__(self) -> AsyncIterator[ChatChunk]:
        return self

    async def __anext__(self) -> ChatChunk:
        s = self._llm.settings
        timeout = s.token_timeout if self._text else s.first_token_timeout
        try:
            kind, value = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError as exc:
            self._stop.set()
            raise ProviderError(f"the LLM produced nothing for {timeout} s", retryable=True) from exc
        if kind == "end":
            self._queue.put_nowait((kind, value))
            raise StopAsyncIteration
        if kind == "error":
            raise ProviderError(f"llama.cpp failed: {value}", retryable=False) from value
        self._text.append(value)
        return ChatChunk(value, self.request_id)

    async def aclose(self) -> None:
        """Stop generating (within one token) and wait, bounded, for the worker to let go."""
        self._stop.set()
        waiter = asyncio.create_task(self._thread_done.wait(), name=f"{self.request_id}-close")
        try:
            await asyncio.wait_for(asyncio.shield(waiter), 5.0)
        except TimeoutError:
            logger.warning("llm worker still busy after cancel", extra={"request_id": self.request_id})
        finally:
            await cancel_and_wait(waiter)
