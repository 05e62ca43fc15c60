"""The conversation record: every item of every conversation in SQLite (stdlib ``sqlite3``, WAL mode) in the
state directory, readable by the service user only.

Each item is written when it is added to the conversation, by one writer thread (a slow SD card never blocks
the event loop), and committed with ``synchronous=FULL``: a ``kill -9`` or a power cut loses nothing that was
committed. A restart within ``agent.history_ttl`` carries on with the latest conversation. Items older than
``agent.history_retention_days`` are deleted at start and once a day. A database that cannot be read is put
aside (renamed, not deleted) and a fresh one started, with one log line saying so.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.errors import ApplianceError
from appliance.llm.base import ChatContext, ChatItem, ChatMessage, Role
from appliance.llm.chat import item_from_dict, item_to_dict

logger = logging.getLogger(__name__)

RECORD_FILE = "conversations.db"
TIMERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS timers (
    id TEXT PRIMARY KEY,
    label TEXT,
    seconds REAL NOT NULL,
    created_at REAL NOT NULL,
    due_at REAL NOT NULL
);
"""
"""The kitchen timers (``appliance.intents.timers``), kept beside the conversations to ring after a restart."""
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    last_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    conversation TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    created_at REAL NOT NULL,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS items_by_conversation ON items (conversation, seq);
{TIMERS_SCHEMA}"""
WRITE_TIMEOUT = 5.0
"""Seconds ``flush()`` waits for the writes under way."""
DAY = 86400.0


class RecordError(ApplianceError):
    """The record cannot be opened."""


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    started_at: float
    last_at: float
    items: int
    first_words: str
    """The start of the first thing the user said (for ``history list``)."""


class ConversationRecord:
    def __init__(
        self,
        path: Path,
        *,
        retention_days: float = 30.0,
        repair: bool = True,
        on_error: Callable[[Exception], None] | None = None,
    ) -> None:
        """``repair``: put an unreadable database aside and start afresh (the daemon's way); without it (a
        command reading the daemon's record) an unreadable one is a ``RecordError``. ``on_error``: told of each
        write that failed (from the writer thread)."""
        self.path = path
        self.on_error = on_error
        self.failed_writes = 0
        self.last_error: str | None = None
        self.retention_days = retention_days
        try:
            self._db = _open(path) if repair else _connect(path)
        except sqlite3.Error as exc:
            raise RecordError(f"conversation record {path} cannot be read ({exc})") from exc
        self._lock = threading.Lock()
        self._adding = threading.Lock()
        """Held while an item is queued: the event loop and a stop's own thread (``save_now``) both add."""
        self._writer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="conversation-record")
        self._pending: list[concurrent.futures.Future[None]] = []
        self._seq = 0
        self._pruned_at = 0.0
        self.conversation = f"conv_{uuid.uuid4().hex[:12]}"
        """The conversation new items belong to (a restored one carries on under its own id)."""
        self.prune()

    @classmethod
    def in_dir(
        cls, state_dir: Path, *, retention_days: float = 30.0, on_error: Callable[[Exception], None] | None = None
    ) -> ConversationRecord:
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return cls(state_dir / RECORD_FILE, retention_days=retention_days, on_error=on_error)

    def health(self) -> dict[str, object]:
        """For ``status``: where the record is and whether its writes succeed."""
        return {"path": str(self.path), "failed_writes": self.failed_writes, "last_error": self.last_error}

    # -- writing (from the event loop; the work is the writer thread's) ---------------------------------------

    def add(self, item: ChatItem) -> None:
        """Record ``item`` (again, if it changed: by its id) in the current conversation."""
        doc = json.dumps(item_to_dict(item))
        with self._adding:
            self._seq += 1
            seq, conversation = self._seq, self.conversation
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._writer.submit(self._write, conversation, item.id, seq, item.created_at, doc))
        if time.time() - self._pruned_at > DAY:
            self._writer.submit(self.prune)

    def save_now(self, item: ChatItem | None, within: float) -> bool:
        """From any thread, when the process is about to end: ``item`` (if any) written after the writes under
        way, waiting at most ``within`` seconds. True if the writer got through all of them in time."""
        deadline = time.monotonic() + within
        if item is not None:
            try:
                self.add(item)
            except RuntimeError:  # the writer has shut down: close() is committing what it was given
                logger.debug("conversation record closing: the item is left to it", extra={"item": item.id})
        return self.flush(max(0.0, deadline - time.monotonic()))

    def _write(self, conversation: str, item_id: str, seq: int, created_at: float, doc: str) -> None:
        now = time.time()
        try:
            with self._lock, self._db:
                self._db.execute(
                    "INSERT INTO conversations (id, started_at, last_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET last_at = excluded.last_at",
                    (conversation, now, now),
                )
                self._db.execute(
                    "INSERT INTO items (id, conversation, seq, created_at, doc) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT(id) DO UPDATE SET doc = excluded.doc",
                    (item_id, conversation, seq, created_at, doc),
                )
        except sqlite3.Error as exc:  # a full or read-only card: counted, said, and the conversation goes on
            self.failed_writes += 1
            self.last_error = str(exc)
            logger.error("conversation record: an item not written", extra={"error": str(exc), "path": str(self.path)})
            if self.on_error is not None:
                self.on_error(RecordError(f"conversation record {self.path}: an item not written ({exc})"))

    def flush(self, timeout: float = WRITE_TIMEOUT) -> bool:
        """Wait for the writes under way (blocking: call it off the loop). True if all are done."""
        _, pending = concurrent.futures.wait(self._pending, timeout)
        return not pending

    def prune(self) -> int:
        """Delete what is older than the retention (0: keep nothing but the conversation under way)."""
        cutoff = time.time() - self.retention_days * DAY
        with self._lock, self._db:
            old = [r[0] for r in self._db.execute("SELECT id FROM conversations WHERE last_at < ?", (cutoff,))]
            old = [c for c in old if c != self.conversation]
            self._db.executemany("DELETE FROM items WHERE conversation = ?", [(c,) for c in old])
            self._db.executemany("DELETE FROM conversations WHERE id = ?", [(c,) for c in old])
        self._pruned_at = time.time()
        if old:
            logger.info("conversation record: old conversations deleted", extra={"conversations": len(old)})
        return len(old)

    def clear(self) -> int:
        with self._lock, self._db:
            count = self._db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0]
            self._db.execute("DELETE FROM items")
            self._db.execute("DELETE FROM conversations")
        with self._lock:
            self._db.execute("VACUUM")  # the words are gone from the file too, not only marked free
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # and from the write-ahead log
        return int(count)

    def close(self) -> None:
        self._writer.shutdown(wait=True)
        with self._lock:
            self._db.close()

    # -- reading --------------------------------------------------------------------------------------------

    def restore(self, max_age: float, max_items: int | None = None) -> ChatContext:
        """The latest conversation if its last item is younger than ``max_age`` seconds (new items then join
        it; the model is given its last ``max_items``), else an empty one."""
        with self._lock:
            row = self._db.execute("SELECT id, last_at FROM conversations ORDER BY last_at DESC LIMIT 1").fetchone()
        if row is None or not 0 <= time.time() - row[1] <= max_age:
            return ChatContext()
        ctx = ChatContext(self.items(row[0]))
        if max_items is not None:
            ctx.truncate(max_items)
        self.conversation = row[0]
        with self._lock:
            query = "SELECT COALESCE(MAX(seq), 0) FROM items WHERE conversation = ?"
            self._seq = self._db.execute(query, (row[0],)).fetchone()[0]
        logger.info("conversation restored", extra={"items": len(ctx.items), "age": round(time.time() - row[1], 1)})
        return ctx

    def items(self, conversation: str) -> list[ChatItem]:
        with self._lock:
            query = "SELECT doc FROM items WHERE conversation = ? ORDER BY seq"
            rows = self._db.execute(query, (conversation,)).fetchall()
        out = []
        for (doc,) in rows:
            try:
                out.append(item_from_dict(json.loads(doc)))
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("conversation record: an unreadable item skipped", extra={"error": str(exc)})
        return out

    def conversations(self) -> list[ConversationSummary]:
        with self._lock:
            rows = self._db.execute(
                "SELECT c.id, c.started_at, c.last_at, COUNT(i.id) FROM conversations c "
                "LEFT JOIN items i ON i.conversation = c.id GROUP BY c.id ORDER BY c.started_at"
            ).fetchall()
        out = []
        for conv, started, last, count in rows:
            said = [i.content for i in self.items(conv) if isinstance(i, ChatMessage) and i.role is Role.USER]
            first = said[0] if said else ""
            out.append(ConversationSummary(conv, started, last, count, first[:60]))
        return out


def _open(path: Path) -> sqlite3.Connection:
    """The database, made if need be (mode 0600); one that cannot be read is put aside and a fresh one made."""
    try:
        return _connect(path)
    except sqlite3.DatabaseError as exc:
        aside = path.with_name(f"{path.name}.broken-{time.strftime('%Y%m%dT%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{path}{suffix}")
            if part.exists():
                part.rename(Path(f"{aside}{suffix}"))
        logger.error(
            "conversation record unreadable: starting a fresh one, the old file kept aside",
            extra={"path": str(path), "kept": str(aside), "error": str(exc)},
        )
        return _connect(path)


def _connect(path: Path) -> sqlite3.Connection:
    return connect(path, SCHEMA, "items")


def connect(path: Path, schema: str, table: str) -> sqlite3.Connection:
    """The record's database (made with mode 0600 if new; WAL, every commit synced), with ``schema`` in
    place; reading ``table`` proves the file is a database (else a ``sqlite3.DatabaseError``)."""
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
    db = sqlite3.connect(path, check_same_thread=False, timeout=2.0, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(schema)
        db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
    except sqlite3.DatabaseError:
        db.close()
        raise
    db.isolation_level = "DEFERRED"  # transactions from here on (``with db:`` commits)
    return db
