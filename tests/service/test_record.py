"""The conversation record: every item written as it is added (SQLite, WAL, mode 0600), the latest conversation
restored while it is recent, old ones deleted, a broken file put aside, and the history command."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from appliance.llm.base import ChatContext, ChatMessage, FunctionOutputItem, Role
from appliance.service.record import RECORD_FILE, ConversationRecord, RecordError


def record_in(tmp_path: Path, **kwargs: float) -> ConversationRecord:
    return ConversationRecord.in_dir(tmp_path, **kwargs)


def said(record: ConversationRecord, *items: tuple[Role, str]) -> list[ChatMessage]:
    out = []
    for role, text in items:
        msg = ChatMessage(role, text)
        record.add(msg)
        out.append(msg)
    assert record.flush()
    return out


def test_items_are_committed_as_they_are_added_and_the_file_is_private(tmp_path: Path) -> None:
    record = record_in(tmp_path)
    said(record, (Role.USER, "what is the capital of France?"))
    ctx = ChatContext()
    ctx.add_function_call("call_1", "get_time", "{}")
    record.add(ctx.items[0])
    record.add(ctx.add_function_output("call_1", "get_time", "12:30"))
    assert record.flush()
    # another connection (another process, after a kill -9) sees it all, committed
    other = sqlite3.connect(tmp_path / RECORD_FILE)
    assert other.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 3
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    assert stat.S_IMODE((tmp_path / RECORD_FILE).stat().st_mode) == 0o600
    record.close()


def test_a_recent_conversation_is_restored_and_goes_on_under_its_id(tmp_path: Path) -> None:
    first = record_in(tmp_path)
    said(first, (Role.USER, "q1"), (Role.ASSISTANT, "a1"))
    conv = first.conversation
    first.close()
    second = record_in(tmp_path)
    restored = second.restore(max_age=300)
    assert [(m.role, m.content) for m in restored.messages()] == [(Role.USER, "q1"), (Role.ASSISTANT, "a1")]
    assert second.conversation == conv
    said(second, (Role.USER, "q2"))
    assert [c.items for c in second.conversations()] == [3]
    assert [m.content for m in second.restore(max_age=300, max_items=2).messages()] == ["a1", "q2"]
    second.close()


def test_an_old_conversation_is_not_restored_and_past_the_retention_is_deleted(tmp_path: Path) -> None:
    record = record_in(tmp_path)
    said(record, (Role.USER, "long ago"))
    with sqlite3.connect(tmp_path / RECORD_FILE) as db:
        db.execute("UPDATE conversations SET last_at = ?", (time.time() - 3 * 86400,))
    record.close()
    again = record_in(tmp_path, retention_days=30)
    assert again.restore(max_age=300).items == []
    assert len(again.conversations()) == 1  # kept: within 30 days
    again.close()
    strict = record_in(tmp_path, retention_days=1)
    assert strict.conversations() == []  # deleted at start
    strict.close()


def test_an_interrupted_reply_is_rewritten_as_far_as_it_was_heard(tmp_path: Path) -> None:
    record = record_in(tmp_path)
    (reply,) = said(record, (Role.ASSISTANT, "Once upon a time, a dragon"))
    reply.content, reply.interrupted = "Once upon a time", True
    record.add(reply)  # the same item (its id): updated, not added twice
    assert record.flush()
    (item,) = record.items(record.conversation)
    assert isinstance(item, ChatMessage) and (item.content, item.interrupted) == ("Once upon a time", True)
    record.close()


def test_a_stop_that_cannot_wait_saves_the_reply_heard_so_far_from_its_own_thread(tmp_path: Path) -> None:
    """A second signal: the item goes in after the writes under way, from a thread that is not the event loop's,
    and the wait is bounded; once the record is closed there is nothing left to wait for."""
    record = record_in(tmp_path)
    record.add(ChatMessage(Role.USER, "tell me a story"))  # not flushed: still with the writer, maybe
    heard = ChatMessage(Role.ASSISTANT, "Once upon a time, a", interrupted=True)
    saved: list[bool] = []
    thread = threading.Thread(target=lambda: saved.append(record.save_now(heard, 0.5)), name="stop")
    thread.start()
    thread.join(2)
    assert saved == [True]
    reader = ConversationRecord(tmp_path / RECORD_FILE, repair=False)  # another process, after the exit
    items = [(i.content, i.interrupted) for i in reader.items(record.conversation) if isinstance(i, ChatMessage)]
    assert items == [("tell me a story", False), ("Once upon a time, a", True)]
    reader.close()
    record.close()
    assert record.save_now(heard, 0.1)  # closed: what it was given is written


def test_a_broken_file_is_put_aside_and_a_fresh_record_started(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / RECORD_FILE).write_bytes(b"this is not a database" * 100)
    record = record_in(tmp_path)
    assert record.conversations() == []
    aside = [p.name for p in tmp_path.iterdir() if ".broken-" in p.name]
    assert len(aside) == 1 and "put aside" not in aside[0]
    assert "conversation record unreadable" in caplog.text
    record.close()
    (tmp_path / RECORD_FILE).write_bytes(b"broken again" * 100)
    with pytest.raises(RecordError, match="cannot be read"):
        ConversationRecord(tmp_path / RECORD_FILE, repair=False)  # a reader never moves the daemon's file


def history(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[service]\nstate_dir = "{tmp_path}"\n')
    return subprocess.run(
        [sys.executable, "-m", "appliance", "--config", str(config), "history", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=os.environ,
        check=False,
    )


def test_the_history_command_lists_shows_exports_and_clears(tmp_path: Path) -> None:
    missing = history(tmp_path, "list")
    assert missing.returncode == 2 and "no conversation record at" in missing.stderr
    record = record_in(tmp_path)
    said(record, (Role.USER, "what time is it"), (Role.ASSISTANT, "Half past twelve."))
    record.add(FunctionOutputItem("call_1", "get_time", "12:30"))
    assert record.flush()
    conv = record.conversation
    record.close()
    listed = history(tmp_path, "list")
    assert listed.returncode == 0 and conv in listed.stdout and "3 items" in listed.stdout
    assert "'what time is it'" in listed.stdout
    shown = history(tmp_path, "show", conv)
    assert "user: what time is it" in shown.stdout and "result of get_time: 12:30" in shown.stdout
    assert history(tmp_path, "show", "conv_nope").returncode == 2
    exported = json.loads(history(tmp_path, "export", "--json").stdout)
    assert [i["type"] for i in exported["conversations"][0]["items"]] == ["message", "message", "function_call_output"]
    cleared = history(tmp_path, "clear", "--yes")
    assert cleared.returncode == 0 and "erased 1 conversations" in cleared.stdout
    assert json.loads(history(tmp_path, "export").stdout) == {"conversations": []}
    files = [p for p in tmp_path.iterdir() if p.name.startswith(RECORD_FILE)]
    assert not any(b"what time is it" in p.read_bytes() for p in files)  # gone from the files, not only unlinked


def test_a_write_that_fails_is_counted_and_told_and_the_conversation_goes_on(tmp_path: Path) -> None:
    errors: list[Exception] = []
    record = ConversationRecord.in_dir(tmp_path, on_error=errors.append)
    said(record, (Role.USER, "kept"))
    record._db.execute("PRAGMA query_only = ON")  # what a read-only or failing card does to every write
    said(record, (Role.USER, "lost"), (Role.ASSISTANT, "lost too"))
    assert record.failed_writes == 2 and len(errors) == 2 and "an item not written" in str(errors[0])
    assert record.health()["failed_writes"] == 2 and "readonly" in str(record.health()["last_error"])
    record.close()


def test_status_says_when_the_record_is_not_being_written() -> None:
    from appliance.cli.status_cmd import render

    doc = {
        "state": "waiting_for_wake",
        "uptime": 5,
        "pid": 1,
        "microphone": {"device": "mic", "recovering": False, "dropped_blocks": 0},
        "speaker": {"device": "spk"},
        "watchdog": {"enabled": False},
        "errors": {"record": 2},
        "turns": 1,
        "interruptions": 0,
        "false_interruptions": 0,
        "wake_detections": 1,
        "latency": {},
        "record": {"path": "/var/lib/appliance/conversations.db", "failed_writes": 2, "last_error": "disk full"},
    }
    text = render(doc)
    assert "errors: record 2" in text
    assert "conversation record: 2 items not written (disk full); check the state directory" in text


def test_doctor_fails_a_state_directory_that_cannot_be_written(tmp_path: Path) -> None:
    from appliance.config import load_config
    from appliance.doctor.result import Status
    from appliance.doctor.service import state_dir_check

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    bad = tmp_path / "config.toml"
    bad.write_text(f'[service]\nstate_dir = "{blocker / "state"}"\n')
    result = state_dir_check(load_config(bad, env={}))
    assert result.status is Status.FAIL and "cannot be written" in result.detail and "df -h" in result.fix
    good = tmp_path / "good.toml"
    good.write_text(f'[service]\nstate_dir = "{tmp_path / "state"}"\n')
    result = state_dir_check(load_config(good, env={}))
    assert result.status is Status.OK and "(made at start)" in result.detail
