"""``appliance-cli status``: the running daemon answers one JSON document on a local Unix socket.

The socket is created with mode 0660 (owner and group only) before it is reachable under its name, in the
service's runtime directory (``/run/appliance``), so only the service user and members of its group read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.config import SERVICE_RUNTIME_DIR, Config
from appliance.errors import ApplianceError

logger = logging.getLogger(__name__)

SOCKET_MODE = 0o660
WRITE_TIMEOUT = 2.0
"""Seconds a client has to take its answer before it is dropped."""


class StatusServer:
    def __init__(self, path: Path, snapshot: Callable[[], dict[str, Any]]) -> None:
        self.path = path
        self._snapshot = snapshot
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        for folder in (self.path.parent, self.path.parent.parent):
            _check_private(folder)
        if self.path.exists() or self.path.is_symlink():
            if _answers(self.path):
                raise ApplianceError(
                    f"another appliance is running (it answers on {self.path}); "
                    "stop it first, or give this one its own service.status_socket"
                )
            self.path.unlink()  # left over from a process that did not stop cleanly
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.unlink(missing_ok=True)
        try:
            sock.bind(str(temporary))
            os.chmod(temporary, SOCKET_MODE)  # before it has its public name: never reachable with looser rights
            os.replace(temporary, self.path)
            sock.listen(8)
            sock.setblocking(False)
            self._server = await asyncio.start_unix_server(self._answer, sock=sock)
        except BaseException:
            sock.close()
            temporary.unlink(missing_ok=True)
            raise
        logger.info("status socket", extra={"path": str(self.path)})

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            writer.write(json.dumps(self._snapshot(), default=str).encode() + b"\n")
            await asyncio.wait_for(writer.drain(), WRITE_TIMEOUT)
        except (TimeoutError, ConnectionError) as exc:
            logger.debug("status client went away", extra={"error": str(exc)})
        except Exception:
            logger.exception("status answer failed")
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), WRITE_TIMEOUT)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), WRITE_TIMEOUT)
            self._server = None
            self.path.unlink(missing_ok=True)


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        try:
            sock.connect(str(path))
        except OSError:
            return False
        return True


def socket_candidates(config: Config) -> list[Path]:
    """Where a running daemon answers: the configured socket, else the service's, then this user's."""
    if config.service.status_socket:
        return [Path(config.service.status_socket)]
    return list(dict.fromkeys([SERVICE_RUNTIME_DIR / "status.sock", config.service.socket_path()]))


def read_status(path: Path, timeout: float = 3.0) -> dict[str, Any]:
    """The daemon's status document (raises ApplianceError with what to do if none answers)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except PermissionError as exc:
            raise ApplianceError(
                f"no permission to read {path}; "
                "run as the service user or join its group (`sudo usermod -aG appliance $USER`)"
            ) from exc
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ApplianceError(
                f"no appliance is running (nothing answers on {path}); start it with `appliance-cli run` "
                "or `systemctl start appliance`"
            ) from exc
        except TimeoutError as exc:
            raise ApplianceError(f"the appliance did not answer on {path} within {timeout} s; it may be stuck") from exc
    try:
        data: dict[str, Any] = json.loads(b"".join(chunks))
    except ValueError as exc:
        raise ApplianceError(f"the answer on {path} is not a status document ({exc})") from exc
    return data


def _check_private(folder: Path) -> None:
    """The socket's folder (and the one above) belong to us or to root and only the owner may write there:
    else another local user could put their own socket in its place (a shared /tmp fallback)."""
    info = folder.stat()
    owners = {os.getuid(), 0}
    loose = info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX
    if info.st_uid not in owners or loose:
        who = f"owned by uid {info.st_uid}" if info.st_uid not in owners else "writable by other users"
        raise ApplianceError(
            f"status socket folder {folder} is {who}: another user could take the socket over; "
            "set XDG_RUNTIME_DIR, or service.status_socket to a path in a private folder"
        )
