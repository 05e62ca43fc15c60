"""``appliance-cli history``: what the appliance recorded of its conversations, and the way to erase it.

The record is the SQLite file in the state directory (``agent.keep_history``; off: nothing is recorded).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from appliance.cli.common import config_from
from appliance.errors import ConfigError
from appliance.llm.base import ChatMessage, FunctionCallItem, FunctionOutputItem
from appliance.llm.chat import ChatItem, item_to_dict
from appliance.service.record import RECORD_FILE, ConversationRecord


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("history", help="list, show, export or clear the recorded conversations")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="one line per conversation: id, when, items, how it began")
    show = actions.add_parser("show", help="one conversation, item by item")
    show.add_argument("id", metavar="ID")
    export = actions.add_parser("export", help="every conversation as JSON on stdout")
    export.add_argument("--json", action="store_true", default=True, help="(the only format)")
    clear = actions.add_parser("clear", help="erase every recorded conversation")
    clear.add_argument("--yes", action="store_true", help="do not ask")
    p.set_defaults(func=_run)


def _open(args: argparse.Namespace) -> ConversationRecord:
    path = config_from(args).service.state_path() / RECORD_FILE
    if not path.is_file():
        raise ConfigError(f"no conversation record at {path}: nothing recorded yet, or agent.keep_history is off")
    return ConversationRecord(path, retention_days=config_from(args).agent.history_retention_days, repair=False)


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _line(item: ChatItem) -> str:
    if isinstance(item, ChatMessage):
        return f"{item.role.value}: {item.content}{' [cut]' if item.interrupted else ''}"
    if isinstance(item, FunctionCallItem):
        return f"call {item.name}({item.arguments})"
    assert isinstance(item, FunctionOutputItem)
    return f"{'error' if item.is_error else 'result'} of {item.name}: {item.output}"


def _run(args: argparse.Namespace) -> int:
    record = _open(args)
    try:
        if args.action == "list":
            for c in record.conversations():
                print(f"{c.id}  {_when(c.started_at)}  {c.items:3d} items  {c.first_words!r}")
        elif args.action == "show":
            if args.id not in {c.id for c in record.conversations()}:
                raise ConfigError(f"no conversation {args.id!r}; `appliance-cli history list` shows the ids")
            for item in record.items(args.id):
                print(f"{_when(item.created_at)}  {_line(item)}")
        elif args.action == "export":
            doc = [{**vars(c), "items": [item_to_dict(i) for i in record.items(c.id)]} for c in record.conversations()]
            print(json.dumps({"conversations": doc}, indent=2))
        else:
            if not args.yes:
                answer = input(f"erase every conversation in {record.path}? [y/N] ")
                if answer.strip().lower() not in ("y", "yes"):
                    print("nothing erased")
                    return 1
            print(f"erased {record.clear()} conversations from {Path(record.path)}")
    finally:
        record.close()
    return 0
