"""Log records as structured data: journald fields under systemd, else one JSON object or one text line each.

Every record is a static message plus its data (``extra={...}``). Transcripts are logged at DEBUG only, and
secrets never (the config keeps them out of ``repr``; nothing logs the config's secret fields).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from typing import Any

_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
QUIET_LIBRARIES = ("pywhispercpp", "piper", "onnxruntime")
"""Libraries that log progress at INFO: kept at WARNING so the daemon's own lines stay readable."""


def extras(record: logging.LogRecord) -> dict[str, object]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


def with_data(line: str, data: dict[str, object]) -> str:
    """``line key=value ...``: the record's data readable after its message."""
    return " ".join([line, *(f"{k}={v}" for k, v in data.items())])


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message key=value ...``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return with_data(super().format(record), extras(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the record's data, and the exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **extras(record),
        }
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


_FIELD = re.compile(r"[^A-Z0-9_]")


def journal_field(key: str) -> str:
    """A journald field name: upper case letters, digits and underscores, not starting with one."""
    name = _FIELD.sub("_", key.upper()).lstrip("_")
    return name if name and not name[0].isdigit() else f"F_{name}"


class JournalHandler(logging.Handler):
    """Sends each record to journald with its data as fields (``journalctl -o verbose`` shows them;
    ``journalctl -u appliance EOS_TO_FIRST_AUDIO=...`` filters by them), through systemd-python's
    ``journal.send``. The message also carries the data as text, so plain ``journalctl`` shows it too."""

    def __init__(self) -> None:
        super().__init__()
        from systemd import journal  # type: ignore[attr-defined]

        self._send = journal.send
        self._text = logging.Formatter("%(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = extras(record)
            message = with_data(self._text.format(record), data)
            fields = {journal_field(k): str(v) for k, v in data.items()}
            self._send(
                message,
                PRIORITY=str(_priority(record.levelno)),
                LOGGER=record.name,
                CODE_FILE=record.pathname,
                CODE_LINE=record.lineno,
                CODE_FUNC=record.funcName,
                SYSLOG_IDENTIFIER="appliance",
                **fields,
            )
        except Exception:
            self.handleError(record)


def _priority(levelno: int) -> int:
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


def under_journald() -> bool:
    """stderr is connected to the journal (systemd sets ``$JOURNAL_STREAM`` to its device:inode)."""
    stream = os.environ.get("JOURNAL_STREAM", "")
    try:
        device, inode = (int(x) for x in stream.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError):
        return False
    return (st.st_dev, st.st_ino) == (device, inode)


def setup(level: int, fmt: str = "text") -> None:
    """Route every log record to stderr (text or JSON) or to the journal (``auto``: journal under systemd)."""
    if fmt == "auto":
        fmt = "journal" if under_journald() else "text"
    handler: logging.Handler
    if fmt == "journal":
        handler = JournalHandler()
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
