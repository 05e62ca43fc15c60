"""Local LLM through llama.cpp (llama-cpp-python); the chat template comes from the GGUF."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from appliance.errors import ModelError
from appliance.llm.base import (
    LLM,
    ChatContext,
    FunctionCall,
    LLMCapabilities,
    Role,
    ToolChoice,
    ToolSpec,
)
from appliance.llm.calls import (
    BARE_CALL,
    ToolFormat,
    as_object,
    best_gap,
    call_mark,
    common_prefix,
    may_start_call,
    partial_suffix,
    starts_call,
)
from appliance.llm.llamacpp_stream import LlamaStream
from appliance.llm.settings import LlamaSettings
from appliance.utils.worker import Job, Worker

logger = logging.getLogger(__name__)

WARM_UP_TIMEOUT = 120.0
"""Seconds evaluating the instructions may take (a big model on a Pi takes a while)."""
MIN_REUSE = 16
"""Cached tokens worth moving down (fewer are quicker to compute again)."""
MAX_CALLS_PER_STEP = 4
"""Tool calls one reply may ask for at once."""
TOOL_HINT = "Call a function only when the question needs what it does; otherwise answer directly."
"""Added to the instructions when tools are offered: a small model otherwise calls one for every question."""
CALL_MAX_TOKENS = 256
"""Tokens one call's JSON may take."""
PREFILL_CHUNK = 4
"""Tokens evaluated between two looks at whether a request is waiting: about 85 ms on 2 cores for the default
model, at nearly the cost per token of one long batch (single tokens cost twice as much)."""
KNOWN_PROMPT = "The capital of France is"
KNOWN_TOKENS = 4
"""Tokens of ``KNOWN_PROMPT``'s continuation that ``check_output`` reads."""


class LlamaCppLLM(LLM):
    """One model, one request at a time on its worker (a new request waits for the previous one to stop,
    which it does within one token).

    Each request reuses what the model has already read: the prompt's prefix that is still in llama.cpp's
    cache, and, when older turns were dropped from the middle of the conversation, the turns after them (their
    cache entries are moved down instead of computed again; see ``_reuse_cache``). Tools go through the model's
    own chat-template format, and a call is decoded under a JSON-schema grammar, so even a small model emits
    a call that parses and names a real tool."""

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
        self._template = str(self._llama.metadata.get("tokenizer.chat_template") or "")
        if not self._template:
            raise ModelError(f"{model_path} has no chat template in its metadata; use a chat (instruct) model")
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        # compiled once (about 10 ms a time for Qwen's template): every request renders through it
        self._formatter: Any = Jinja2ChatFormatter(
            template=self._template,
            eos_token=self._token_text(self._llama.token_eos()),
            bos_token=self._token_text(self._llama.token_bos()),
        )
        self._tool_texts: dict[str, str] = {}
        self.tool_format = ToolFormat.for_template(self._template)
        self.capabilities = LLMCapabilities(streaming=True, tool_calling=self.tool_format is not None)
        self._worker = Worker("llm")
        self._requests = 0
        self._grammars: dict[str, Any] = {}
        self.reused_tokens = 0
        """Cached tokens moved down instead of computed again (see ``_reuse_cache``), over all requests."""

    def check_output(self) -> str | None:
        """What is wrong with this model's greedy continuation of a known prompt; None if a working model could
        have written it. Broken weights write nothing, or one token over and over (NaN logits pick token 0,
        "!"), and every reply would be that."""
        prompt = self._llama.tokenize(KNOWN_PROMPT.encode("utf-8"), add_bos=True)
        tokens: list[int] = []
        decoding = self._llama.generate(prompt, temp=0.0)
        try:
            for token in decoding:
                if token == self._llama.token_eos() or len(tokens) == KNOWN_TOKENS:
                    break
                tokens.append(int(token))
        except (RuntimeError, ValueError) as exc:
            return f"it failed on a known prompt ({exc})"
        finally:
            decoding.close()
            self._llama.n_tokens = 0  # the first real prompt is evaluated from scratch, as it would have been
        text = self._token_texts(tokens)
        if not tokens:
            return f"it wrote nothing after {KNOWN_PROMPT!r}"
        if (len(set(tokens)) == 1 and len(tokens) > 1) or not any(c.isalnum() for c in text):
            return f"it went on from {KNOWN_PROMPT!r} with {text!r}"
        return None

    def chat(
        self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = (), tool_choice: ToolChoice = "auto"
    ) -> LlamaStream:
        self._requests += 1
        offered = tuple(tools) if self.tool_format is not None else ()
        required = tool_choice == "required" and bool(offered)
        return LlamaStream(self, chat_ctx.copy(), offered, f"llm_{self._requests}", required=required)

    async def warm_up(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> None:
        """As ``prefill``, in whole batches (at start nothing waits, and a restored conversation is long)."""
        await self._read_ahead(chat_ctx, tools, self._llama.n_batch, "LLM warm-up")

    async def prefill(self, chat_ctx: ChatContext, *, tools: Sequence[ToolSpec] = ()) -> None:
        """Evaluate the conversation so far, up to where the user's next message begins (the instructions, the
        tools, the last reply, the template's opening of a user message), so the request for the reply to it
        computes only the user's words. It yields to a request made meanwhile within :data:`PREFILL_CHUNK`
        tokens."""
        await self._read_ahead(chat_ctx, tools, PREFILL_CHUNK, "LLM prefill")

    async def _read_ahead(self, chat_ctx: ChatContext, tools: Sequence[ToolSpec], chunk: int, what: str) -> None:
        ctx, offered = chat_ctx.copy(), tuple(tools) if self.tool_format is not None else ()
        await self._worker.run(lambda job: self._read(ctx, offered, job, chunk), bound=WARM_UP_TIMEOUT, what=what)

    def _read(self, chat_ctx: ChatContext, tools: Sequence[ToolSpec], job: Job, chunk: int) -> None:
        """On the worker: the prompt up to the user's next words into the cache, ``chunk`` tokens at a time,
        until a request waits."""
        tokens = self._tokenize(self._render_before_user(chat_ctx, tools))
        self._reuse_cache(tokens)
        same = common_prefix(self._cached(), tokens)
        for start in range(same, len(tokens), chunk):
            if job.cancelled or self._worker.waiting:
                return
            self._llama.n_tokens = start  # what the cache holds past it differs, and is overwritten
            self._llama.eval(tokens[start : start + chunk])

    def _render_before_user(self, chat_ctx: ChatContext, tools: Sequence[ToolSpec]) -> str:
        """The prompt a request with the user's next message will have, up to where that message's words go."""
        marker = "\u2063user\u2063"
        ctx = chat_ctx.copy()
        ctx.add_message(Role.USER, marker)
        return self.render(ctx, tools).split(marker, 1)[0]

    def prompt_tokens(self, chat_ctx: ChatContext, tools: Sequence[ToolSpec] = ()) -> list[int]:
        return self._tokenize(self.render(chat_ctx, tools))

    def _tokenize(self, text: str) -> list[int]:
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def render(self, chat_ctx: ChatContext, tools: Sequence[ToolSpec] = ()) -> str:
        """The prompt as the model's own chat template writes it, ending where the assistant speaks.

        Offered tools are described in a system message just before the user's newest message, in the words
        the template uses for them, rather than in the first system message where the template puts them: the
        conversation before it then reads the same with tools or without, so llama.cpp's cached prompt stays
        valid on a turn that offers tools (and on the turns after it)."""
        messages = self._messages(chat_ctx)
        if tools:
            last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=len(messages))
            note = {"role": "system", "content": f"{self._tools_text(tools)}\n\n{TOOL_HINT}"}
            messages.insert(last_user, note)
        return str(self._formatter(messages=messages).prompt)

    def _messages(self, chat_ctx: ChatContext) -> list[dict[str, Any]]:
        messages = chat_ctx.to_openai(native_tools=self.tool_format is not None)
        for message in messages:  # chat templates read a call's arguments as an object, not as JSON text
            for call in message.get("tool_calls") or ():
                call["function"]["arguments"] = as_object(call["function"]["arguments"])
        return messages

    def _tools_text(self, tools: Sequence[ToolSpec]) -> str:
        """How the template describes ``tools`` (what it adds to the system message when given them); the
        same tools are described once."""
        specs = [t.to_openai() for t in tools]
        key = json.dumps(specs, sort_keys=True)
        if key not in self._tool_texts:
            marker = "\u2063instructions\u2063"
            probe = [{"role": "system", "content": marker}, {"role": "user", "content": "?"}]
            after = str(self._formatter(messages=probe, tools=specs).prompt).split(marker, 1)[1]
            end = self._token_text(self._llama.token_eos())
            self._tool_texts[key] = after.split(end, 1)[0].strip() if end else after.strip()
        return self._tool_texts[key]

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._token_texts([token])

    def _token_texts(self, tokens: list[int]) -> str:
        return self._llama.detokenize(tokens, special=True).decode("utf-8", errors="ignore")

    def _cached(self) -> list[int]:
        return [int(t) for t in self._llama.input_ids[: self._llama.n_tokens]]

    def _reuse_cache(self, tokens: list[int]) -> None:
        """When the new prompt is the cached one with a stretch cut out of the middle (older turns dropped to
        keep the prompt within its budget), remove that stretch from llama.cpp's cache and move what follows
        it down, so only the new turn is computed, not the whole conversation again."""
        import llama_cpp

        cached = self._cached()
        same = common_prefix(cached, tokens)
        if same >= len(tokens) or same >= len(cached):
            return
        gap, length = best_gap(cached, tokens, same)
        if length < MIN_REUSE:
            return
        memory = llama_cpp.llama_get_memory(self._llama.ctx)
        if not llama_cpp.llama_memory_can_shift(memory):
            return
        end = len(cached)
        if not llama_cpp.llama_memory_seq_rm(memory, 0, same, same + gap):
            return
        llama_cpp.llama_memory_seq_add(memory, 0, same + gap, end, -gap)
        kept = self._llama.input_ids[same + gap : end].copy()
        self._llama.input_ids[same : end - gap] = kept
        self._llama.n_tokens = end - gap
        self.reused_tokens += length
        logger.debug("llm cache: dropped turns cut out", extra={"cut": gap, "kept": length})

    def _grammar(self, tools: Sequence[ToolSpec]) -> Any:
        """The grammar a call must follow: one of the offered tools, with arguments matching its schema."""
        from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

        assert self.tool_format is not None
        key = json.dumps(self.tool_format.call_schema(tools), sort_keys=True)
        if key not in self._grammars:
            # the name before the arguments: the model picks the tool first, then fills in what it takes
            gbnf = json_schema_to_gbnf(key, prop_order=["name", "arguments"])
            self._grammars[key] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[key]

    def _complete(
        self,
        tokens: list[int],
        job: Job,
        grammar: Any = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
    ) -> Any:
        s = self.settings
        self._reuse_cache(tokens)
        return self._llama.create_completion(
            tokens,
            stream=True,
            max_tokens=max_tokens or s.max_tokens,
            temperature=s.temperature if temperature is None else temperature,
            top_p=s.top_p,
            repeat_penalty=s.repeat_penalty,
            stop=[self._token_text(self._llama.token_eos())],
            grammar=grammar,
        )

    def generate(
        self,
        chat_ctx: ChatContext,
        tools: Sequence[ToolSpec],
        job: Job,
        on_text: Callable[[str], None],
        on_call: Callable[[FunctionCall], None],
        *,
        required: bool = False,
    ) -> tuple[float, int, int, int]:
        """Blocking generation on the worker: each piece of text to ``on_text``, each complete tool call to
        ``on_call``; stops within one token of ``job`` being cancelled. Returns (seconds to the first text or
        call, completion tokens, prompt tokens, prompt tokens found in the cache)."""
        start = time.perf_counter()
        ttft, completion = -1.0, 0
        prompt = self.prompt_tokens(chat_ctx, tools)
        self._reuse_cache(prompt)
        cached = min(common_prefix(self._cached(), prompt), len(prompt))
        opener = self.tool_format.opener if tools and self.tool_format is not None else None
        held, written = "", ""
        calls = 0
        tokens = prompt
        decided = required or opener is None
        while True:
            opened = required and not calls  # a required call starts under the grammar at once
            if not decided:
                # whether to call a tool is the model's most likely first token, not a draw: the same
                # question gets the same decision
                decided = True
                first = "".join(str(c["choices"][0]["text"]) for c in self._complete(tokens, job, None, 1, 0.0))
                lead = first.lstrip()
                opened = bool(lead) and (starts_call(lead) or may_start_call(lead))
                if not opened and first:
                    held, tokens = first, tokens + self._tokenize(first)
                    completion += 1
            stream = None if opened else self._complete(tokens, job)
            try:
                for chunk in stream or ():
                    if job.cancelled:
                        break
                    piece = str(chunk["choices"][0]["text"])
                    if not piece:
                        continue
                    completion += 1
                    held += piece
                    if opener is not None and not written and starts_call(held):
                        held, opened = "", True  # a reply that starts as JSON is a call in the wrong dress
                        break
                    mark = call_mark(held, opener) if opener is not None else None
                    if mark is not None:
                        before = held[:mark]
                        if before.strip():
                            on_text(before)
                            written += before
                        held, opened = "", True
                        break
                    if opener is not None and not written and may_start_call(held):
                        continue
                    keep = max(partial_suffix(held, t) for t in (opener, BARE_CALL)) if opener is not None else 0
                    out, held = held[: len(held) - keep], held[len(held) - keep :]
                    if out:
                        if ttft < 0:
                            ttft = time.perf_counter() - start
                        on_text(out)
                        written += out
            finally:
                if stream is not None:
                    stream.close()
            if not opened or job.cancelled or opener is None or self.tool_format is None:
                break
            # the model opened a call: its body is decoded under the grammar, so it always parses
            # in the template's own format, whatever the model started it with
            head = self._tokenize(written + opener + "\n") if not calls else self._tokenize(opener + "\n")
            tokens = (tokens if calls else prompt) + head
            body = self._constrained(tokens, tools, job)
            if body is None:
                break
            if ttft < 0:
                ttft = time.perf_counter() - start
            name, arguments, text = body
            calls += 1
            on_call(FunctionCall(f"call_{uuid.uuid4().hex[:12]}", name, arguments))
            tokens = tokens + self._tokenize(text + self.tool_format.closer + "\n")
            written = ""
            if calls >= MAX_CALLS_PER_STEP or required:
                break
        if held and not job.cancelled:
            if ttft < 0:
                ttft = time.perf_counter() - start
            on_text(held)
        return ttft, completion, len(prompt), cached

    def _constrained(self, tokens: list[int], tools: Sequence[ToolSpec], job: Job) -> tuple[str, str, str] | None:
        """Decode one call's JSON under the grammar: (tool name, arguments as JSON text, the text decoded)."""
        stream = self._complete(tokens, job, grammar=self._grammar(tools), max_tokens=CALL_MAX_TOKENS)
        parts: list[str] = []
        try:
            for chunk in stream:
                if job.cancelled:
                    return None
                parts.append(str(chunk["choices"][0]["text"]))
        finally:
            stream.close()
        text = "".join(parts)
        try:
            doc = json.loads(text)
        except ValueError:  # only when the call was cut at CALL_MAX_TOKENS
            logger.warning("llm tool call cut short", extra={"chars": len(text)})
            return None
        return str(doc["name"]), json.dumps(doc.get("arguments") or {}), text

    def close(self) -> None:
        self._worker.close()
        self._llama.close()
