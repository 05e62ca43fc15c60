"""A Unix socket that answers one JSON document, as the daemon's status socket does."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def answering(path: Path, doc: dict[str, Any]) -> Iterator[Path]:
    """``path`` answers its first connection with ``doc`` while the block runs."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(json.dumps(doc).encode() + b"\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        thread.join(5)
        server.close()
