"""The conversation kept across a restart: restored while recent, never from a file that is stale or broken."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

from appliance.llm.base import ChatContext, Role
from appliance.service.history import HISTORY_FILE, load_history, save_history


def conversation() -> ChatContext:
    ctx = ChatContext()
    ctx.add_message(Role.SYSTEM, "instructions come from the config, not the file")
    ctx.add_message(Role.USER, "what is the capital of France?")
    ctx.add_message(Role.ASSISTANT, "Paris.", interrupted=True)
    return ctx


def test_a_recent_conversation_is_restored_without_the_instructions(tmp_path: Path) -> None:
    path = save_history(tmp_path, conversation(), max_turns=12)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    restored = load_history(tmp_path, max_age=300)
    assert [(m.role, m.content, m.interrupted) for m in restored.items] == [
        (Role.USER, "what is the capital of France?", False),
        (Role.ASSISTANT, "Paris.", True),
    ]


def test_a_conversation_older_than_the_ttl_is_not_restored(tmp_path: Path) -> None:
    save_history(tmp_path, conversation(), max_turns=12)
    doc = json.loads((tmp_path / HISTORY_FILE).read_text())
    doc["saved_at"] = time.time() - 301
    (tmp_path / HISTORY_FILE).write_text(json.dumps(doc))
    assert load_history(tmp_path, max_age=300).items == []


def test_a_corrupt_history_file_starts_afresh_and_says_so(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / HISTORY_FILE).write_text('{"saved_at": 1, "items": [{"role": "wizard"')
    assert load_history(tmp_path, max_age=1e12).items == []
    (tmp_path / HISTORY_FILE).write_text(json.dumps({"saved_at": time.time(), "items": [{"role": "wizard"}]}))
    assert load_history(tmp_path, max_age=300).items == []
    assert "saved conversation unreadable" in caplog.text


def test_only_the_last_turns_are_kept(tmp_path: Path) -> None:
    ctx = ChatContext()
    for i in range(10):
        ctx.add_message(Role.USER, f"q{i}")
    save_history(tmp_path, ctx, max_turns=3)
    assert [m.content for m in load_history(tmp_path, max_age=300).items] == ["q7", "q8", "q9"]
