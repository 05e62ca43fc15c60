"""The real SmolLM2 model through llama.cpp."""

import asyncio
import itertools
import time

from appliance.llm.base import ChatContext, Role
from appliance.llm.llamacpp import LlamaCppLLM, LlamaSettings
from tests.helpers import run


def ctx(question: str) -> ChatContext:
    c = ChatContext()
    c.add_message(Role.SYSTEM, "You are a helpful assistant. Answer briefly.")
    c.add_message(Role.USER, question)
    return c


def test_reply_streams_in_several_chunks_with_metrics(llm: LlamaCppLLM) -> None:
    async def go():
        stream = llm.chat(ctx("Name three colors."))
        chunks = [c async for c in stream]
        await stream.aclose()
        return stream, chunks

    stream, chunks = run(go())
    assert len(chunks) >= 3
    assert stream.text.strip()
    m = stream.metrics
    assert m is not None and not m.cancelled
    assert m.completion_tokens == len(chunks)
    assert m.prompt_tokens > 10
    assert 0 < m.ttft <= m.duration
    assert m.tokens_per_second > 0


def test_cancel_stops_generation_within_one_token(llm: LlamaCppLLM) -> None:
    async def go():
        stream = llm.chat(ctx("Write a long story about a dragon who learns to cook."))
        received = 0
        async for _ in stream:
            received += 1
            if received == 3:
                break
        await stream.aclose()
        return stream, received

    stream, received = run(go())
    m = stream.metrics
    assert m is not None and m.cancelled
    # tokens already queued when we stopped reading, plus at most the one being computed
    assert m.completion_tokens <= received + 2
    assert m.completion_tokens < LlamaSettings().max_tokens


def test_chat_template_comes_from_the_gguf(llm: LlamaCppLLM) -> None:
    prompt = llm._render(ctx("hello"))
    assert "<|im_start|>system" in prompt and "<|im_start|>user\nhello" in prompt


def test_next_request_after_cancel_answers_normally(llm: LlamaCppLLM) -> None:
    async def go():
        first = llm.chat(ctx("Count from one to fifty."))
        async for _ in first:
            break
        await first.aclose()
        second = llm.chat(ctx("What is the capital of France?"))
        text = "".join([c.delta async for c in second])
        await second.aclose()
        return text

    assert run(go()).strip()


def test_chat_context_truncation_keeps_instructions() -> None:
    c = ChatContext()
    c.add_message(Role.SYSTEM, "rules")
    for i in range(10):
        c.add_message(Role.USER, f"q{i}")
    c.truncate(2)
    assert [m.content for m in c.items] == ["rules", "q8", "q9"]


def test_streaming_does_not_block_the_event_loop(llm: LlamaCppLLM) -> None:
    """Generation runs on the engine's worker: the loop keeps turning while tokens come."""

    async def go() -> float:
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.005)

        t = asyncio.create_task(ticker())
        stream = llm.chat(ctx("Name five animals."))
        async for _ in stream:
            pass
        await stream.aclose()
        t.cancel()
        assert len(ticks) > 3
        return max(b - a for a, b in itertools.pairwise(ticks))

    assert run(go()) < 0.1
