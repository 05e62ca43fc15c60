"""The typed conversation: messages, function calls and their outputs, copied, cut, merged and serialized."""

from __future__ import annotations

import itertools
import json
import time

from appliance.llm.base import ChatContext, ChatMessage, FunctionCallItem, FunctionOutputItem, Role


def conversation() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(Role.SYSTEM, "rules")
    ctx.add_message(Role.USER, "what time is it and how warm is it")
    ctx.add_function_call("call_1", "get_time", "{}")
    ctx.add_function_call("call_2", "get_weather", '{"city": "Oslo"}')
    ctx.add_function_output("call_1", "get_time", "12:30")
    ctx.add_function_output("call_2", "get_weather", "no such city", is_error=True)
    ctx.add_message(Role.ASSISTANT, "It is half past twelve.", interrupted=True)
    return ctx


def test_every_item_has_an_id_and_a_time_and_a_copy_is_independent() -> None:
    ctx = conversation()
    assert len({item.id for item in ctx.items}) == len(ctx.items)
    assert all(item.created_at <= time.time() for item in ctx.items)
    copy = ctx.copy()
    assert copy == ctx and copy.items[1] is not ctx.items[1]
    copy.items[1].content = "changed"  # type: ignore[union-attr]
    assert ctx.items[1].content == "what time is it and how warm is it"  # type: ignore[union-attr]


def test_copy_can_leave_out_the_function_calls_or_the_instructions() -> None:
    ctx = conversation()
    plain = ctx.copy(exclude_function_calls=True)
    assert all(isinstance(i, ChatMessage) for i in plain.items) and len(plain.items) == 3
    bare = ctx.copy(exclude_instructions=True)
    assert [type(i).__name__ for i in bare.items][:2] == ["ChatMessage", "FunctionCallItem"]
    assert all(not (isinstance(i, ChatMessage) and i.role is Role.SYSTEM) for i in bare.items)


def test_truncate_never_leaves_an_output_without_its_call() -> None:
    ctx = conversation()
    ctx.truncate(3)  # the last three are both outputs and the reply: the outputs' calls are cut, so they go
    assert [(type(i).__name__, getattr(i, "role", None)) for i in ctx.items] == [
        ("ChatMessage", Role.SYSTEM),
        ("ChatMessage", Role.ASSISTANT),
    ]
    ctx = conversation()
    ctx.truncate(4)  # call_2, both outputs, the reply: call_1's output goes with its call
    outputs = [i.call_id for i in ctx.items if isinstance(i, FunctionOutputItem)]
    calls = [i.call_id for i in ctx.items if isinstance(i, FunctionCallItem)]
    assert outputs == ["call_2"] and calls == ["call_2"] and len(ctx.items) == 4


def test_merge_dedupes_by_id_and_keeps_the_time_order() -> None:
    ctx = conversation()
    other = ctx.copy()
    late = other.add_message(Role.USER, "thanks")
    early = ChatMessage(Role.USER, "first of all", created_at=0.0)
    other.items.append(early)
    ctx.merge(other)
    assert [i.id for i in ctx.items].count(late.id) == 1 and len(ctx.items) == 9
    assert ctx.items[0] == early and ctx.items[-1] == late


def test_serialization_round_trips_through_json() -> None:
    ctx = conversation()
    again = ChatContext.from_dict(json.loads(json.dumps(ctx.to_dict())))
    assert again == ctx


def test_openai_messages_group_calls_made_together_and_answer_each() -> None:
    messages = conversation().to_openai()
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool", "assistant"]
    calls = messages[2]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_1", "call_2"] and calls[1]["function"]["arguments"] == '{"city": "Oslo"}'
    assert messages[3] == {"role": "tool", "tool_call_id": "call_1", "content": "12:30"}


def test_a_model_without_a_tool_format_reads_what_was_found_as_text() -> None:
    messages = conversation().to_openai(native_tools=False)
    assert [m["role"] for m in messages] == ["system", "user", "system", "system", "assistant"]
    assert messages[2]["content"] == "The function get_time returned: 12:30"
    assert messages[3]["content"] == "The function get_weather failed: no such city"


def test_over_the_token_budget_old_turns_go_in_blocks_so_the_prompt_prefix_holds_for_several_turns() -> None:
    conv = ChatContext()
    conv.add_message(Role.SYSTEM, "rules")
    firsts = []
    for i in range(40):
        conv.add_message(Role.USER, f"question number {i} about something")
        conv.add_message(Role.ASSISTANT, f"answer number {i}, in a sentence or two")
        asked = conv.copy()
        asked.truncate(1000, max_tokens=400)
        assert asked.items[0].content == "rules"
        assert asked.estimated_tokens() <= 400
        firsts.append(asked.items[1].id)
    changes = sum(a != b for a, b in itertools.pairwise(firsts))
    assert 3 <= changes <= 40 // 3  # it moved, but far less often than every turn
    assert len({*firsts}) == changes + 1  # and only forward


def test_a_short_conversation_is_not_cut_by_the_token_budget() -> None:
    conv = ChatContext()
    conv.add_message(Role.SYSTEM, "rules")
    conv.add_message(Role.USER, "hi")
    conv.add_message(Role.ASSISTANT, "hello")
    asked = conv.copy()
    asked.truncate(1000, max_tokens=1024)
    assert [m.content for m in asked.messages()] == ["rules", "hi", "hello"]
