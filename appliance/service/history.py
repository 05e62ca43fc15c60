"""The conversation kept across a restart: saved in the state directory, restored while it is recent.

A restart (an update, or the watchdog) in the middle of a conversation then loses nothing the user said.
The file is readable by the service user only, and it is written atomically (a crash leaves the old one).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from appliance.llm.base import ChatContext
from appliance.utils.files import write_atomically

logger = logging.getLogger(__name__)

HISTORY_FILE = "history.json"


def save_history(state_dir: Path, chat_ctx: ChatContext, max_turns: int) -> Path:
    """Write the last ``max_turns`` items (not the instructions: those come from the config)."""
    turns = chat_ctx.copy(exclude_instructions=True)
    turns.truncate(max_turns)
    doc = {"saved_at": time.time(), **turns.to_dict()}
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / HISTORY_FILE
    write_atomically(path, json.dumps(doc), 0o600)
    return path


def load_history(state_dir: Path, max_age: float) -> ChatContext:
    """The saved conversation if it is younger than ``max_age`` seconds, else an empty one."""
    path = state_dir / HISTORY_FILE
    ctx = ChatContext()
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        age = time.time() - float(doc["saved_at"])
        if not 0 <= age <= max_age:
            return ctx
        saved = ChatContext.from_dict(doc)
        ctx.items = saved.copy(exclude_instructions=True).items
    except FileNotFoundError:
        return ctx
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("saved conversation unreadable: starting afresh", extra={"path": str(path), "error": str(exc)})
        return ChatContext()
    logger.info("conversation restored", extra={"turns": len(ctx.items), "age": round(age, 1)})
    return ctx
