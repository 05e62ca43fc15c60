"""The real default model (Qwen2.5-Coder-1.5B-Instruct) through llama.cpp."""

import asyncio
import dataclasses
import itertools
import json
import time

import pytest

from appliance.agent.agent import DEFAULT_INSTRUCTIONS
from appliance.engines import DEFAULT_LLM, EngineChoice
from appliance.errors import ModelError
from appliance.llm.base import ChatContext, FunctionCall, Role, ToolSpec
from appliance.llm.llamacpp import LlamaCppLLM
from appliance.llm.llamacpp_stream import LlamaStream
from appliance.llm.settings import LlamaSettings
from tests.helpers import run
from tests.models.corrupt import copy_verified, gguf_tensor, rot


async def answered(llm: LlamaCppLLM, chat_ctx: ChatContext) -> LlamaStream:
    """The whole reply to ``chat_ctx``, its stream closed (its text and metrics kept)."""
    stream = llm.chat(chat_ctx)
    async for _ in stream:
        pass
    await stream.aclose()
    assert stream.metrics is not None
    return stream


async def read_and_reused(llm: LlamaCppLLM, chat_ctx: ChatContext, question: str) -> tuple[int, int]:
    """``question`` asked after ``chat_ctx``: its prompt's tokens, and how many of them were in the cache."""
    asked = chat_ctx.copy()
    asked.add_message(Role.USER, question)
    metrics = (await answered(llm, asked)).metrics
    assert metrics is not None
    return metrics.prompt_tokens, metrics.cached_tokens


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
    prompt = llm.render(ctx("hello"))
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


TOOLS = [
    ToolSpec("get_time", "Get the current local time.", {"type": "object", "properties": {}}),
    ToolSpec(
        "set_timer",
        "Set a kitchen timer.",
        {
            "type": "object",
            "properties": {"seconds": {"type": "integer"}, "label": {"type": "string"}},
            "required": ["seconds"],
        },
    ),
]


def ask_with_tools(llm: LlamaCppLLM, question: str) -> tuple[str, list[FunctionCall]]:
    async def go() -> tuple[str, list[FunctionCall]]:
        asked = ChatContext()
        asked.add_message(Role.SYSTEM, DEFAULT_INSTRUCTIONS)  # the agent's own
        asked.add_message(Role.USER, question)
        stream = llm.chat(asked, tools=TOOLS)
        text, calls = "", []
        async for chunk in stream:
            text += chunk.delta
            calls.extend(chunk.tool_calls)
        await stream.aclose()
        return text, calls

    return run(go())


def test_the_model_calls_a_tool_in_its_own_format_and_the_call_always_parses(llm: LlamaCppLLM) -> None:
    assert llm.capabilities.tool_calling  # the GGUF's template has a tool format
    assert "<tool_call>" in llm.render(ctx("hi"), TOOLS) and '"set_timer"' in llm.render(ctx("hi"), TOOLS)
    text, calls = ask_with_tools(llm, "Set a timer for five minutes.")
    assert text.strip() == ""  # nothing of the call is spoken
    assert [c.name for c in calls] == ["set_timer"]
    args = json.loads(calls[0].arguments)
    assert args["seconds"] == 300 and set(args) <= {"seconds", "label"}  # no made-up arguments
    text, calls = ask_with_tools(llm, "What time is it right now?")
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("get_time", {})]


def test_a_question_no_tool_answers_is_answered_in_words_with_tools_offered(llm: LlamaCppLLM) -> None:
    text, calls = ask_with_tools(llm, "What is the capital of France?")
    assert calls == [] and "Paris" in text


def test_dropping_old_turns_keeps_the_rest_of_the_cached_prompt(llm: LlamaCppLLM) -> None:
    """The budget cuts the oldest turns out of the middle of the prompt: the turns after the cut are moved
    down in llama.cpp's cache instead of being computed again, and the model still reads them right."""

    async def go() -> tuple[list[str], int, ChatContext]:
        conv = ChatContext()
        conv.add_message(Role.SYSTEM, "You are a helpful assistant. Answer briefly.")
        answers = []
        questions = ["What is two plus two?", "Name a color.", "Name an animal.", "My name is Ana.", "What is my name?"]
        before = llm.reused_tokens
        for question in questions:
            conv.add_message(Role.USER, question)
            asked = conv.copy()
            asked.truncate(100, max_tokens=100)  # a budget so small the oldest turns go
            stream = llm.chat(asked)
            answer = "".join([c.delta async for c in stream])
            await stream.aclose()
            conv.add_message(Role.ASSISTANT, answer)
            answers.append(answer)
        return answers, llm.reused_tokens - before, asked

    answers, reused, last = run(go())
    said = [m.content for m in last.messages()]
    assert "What is two plus two?" not in said and "My name is Ana." in said  # cut before, kept after
    assert reused > 20
    assert "Ana" in answers[-1]


def test_a_restored_conversation_read_at_warm_up_is_not_computed_again_by_the_first_turn(llm: LlamaCppLLM) -> None:
    restored = ChatContext()
    restored.add_message(Role.SYSTEM, DEFAULT_INSTRUCTIONS)
    for question, answer in [
        ("What is the capital of Spain?", "The capital of Spain is Madrid."),
        ("How many legs does a cat have?", "A cat has four legs."),
        ("Which planet is closest to the sun?", "Mercury is the closest planet to the sun."),
    ]:
        restored.add_message(Role.USER, question)
        restored.add_message(Role.ASSISTANT, answer)

    async def go() -> tuple[int, int]:
        await llm.warm_up(restored)  # what the session does at start with a restored conversation
        return await read_and_reused(llm, restored, "And which one is the largest?")

    prompt, cached = run(go())
    assert prompt > 80
    assert prompt - cached <= 20  # only the new question (and the template's tags around it) was computed


def test_weights_gone_bad_under_a_valid_stamp_fail_the_load_naming_the_file_and_the_fix(models, tmp_path) -> None:
    """Before the check at load such a model loaded, and every reply was "!!!!!!" (token 0, from NaN logits)."""
    copy = copy_verified(models, tmp_path, DEFAULT_LLM)
    path = copy.store.path(copy.spec(DEFAULT_LLM))
    rot(path, gguf_tensor(path, "blk.0.ffn_down.weight"))
    with pytest.raises(ModelError) as err:
        copy.llm(EngineChoice())
    message = str(err.value)
    assert str(path) in message and "'!!!!'" in message and len(message.splitlines()) == 1
    assert f"`appliance-cli models fetch --name {DEFAULT_LLM} --force`" in message
    with pytest.raises(ModelError, match="corrupted"):  # the stamp is gone: the next load hashes the file
        copy.path(DEFAULT_LLM)


def test_after_a_prefill_a_turn_computes_only_the_users_words_and_the_answers_opening(llm: LlamaCppLLM) -> None:
    """What the session does when it starts listening: the end of the last reply and the template's opening
    of the user's message are read before the user has finished speaking."""
    conversation = ctx("What is the capital of Spain?")

    async def go() -> tuple[int, int]:
        conversation.add_message(Role.ASSISTANT, (await answered(llm, conversation)).text)
        await llm.prefill(conversation)
        return await read_and_reused(llm, conversation, "And the capital of Italy?")

    prompt, cached = run(go())
    asked = conversation.copy()
    asked.add_message(Role.USER, "And the capital of Italy?")
    before_words = llm._tokenize(llm._render_before_user(conversation, ()))
    assert llm.prompt_tokens(asked)[: len(before_words)] == before_words
    assert cached == len(before_words) and prompt > cached  # without the prefill, the reply's end was computed too


def test_a_request_made_during_a_prefill_does_not_wait_for_it(
    llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the request reads most of this long prompt itself: over 300 tokens, about 10 s on a slow 2-CPU box, past
    # the default first-token bound; whether it waited for the prefill is told by what it found in the cache
    monkeypatch.setattr(llm, "settings", dataclasses.replace(llm.settings, first_token_timeout=60.0))
    long = ChatContext()
    long.add_message(Role.SYSTEM, "You are a patient librarian who answers in one sentence.")
    for i in range(12):
        long.add_message(Role.USER, f"Which shelf holds the books about topic number {i}?")
        long.add_message(Role.ASSISTANT, f"The books about topic number {i} are on shelf {i + 3}, by the window.")
    prefix = len(llm._tokenize(llm._render_before_user(long, ())))

    async def go() -> int:
        prefill = asyncio.create_task(llm.prefill(long))
        await asyncio.sleep(0.3)  # the prefill is under way: all of it takes seconds
        asked = long.copy()
        asked.add_message(Role.USER, "Where are the books about birds?")
        metrics = (await answered(llm, asked)).metrics
        await asyncio.wait_for(prefill, 5)  # it ended, without an error, when the request came
        assert metrics is not None
        return metrics.cached_tokens

    assert prefix > 300
    assert run(go()) < prefix / 2
