"""The status socket is only made in a folder no other local user can write to (or own)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from appliance.errors import ApplianceError
from appliance.service.status import StatusServer, read_status


def start(path: Path) -> None:
    async def go() -> None:
        server = StatusServer(path, lambda: {"state": "ok"})
        await server.start()
        try:
            assert (await asyncio.to_thread(read_status, path))["state"] == "ok"
        finally:
            await server.aclose()

    asyncio.run(go())


def test_a_private_folder_is_used(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    start(folder / "appliance" / "status.sock")


@pytest.mark.parametrize("how", ["world-writable", "another owner"])
def test_a_folder_another_user_could_take_over_is_refused(tmp_path: Path, how: str) -> None:
    shared = tmp_path / "runtime-0"  # like the /tmp fallback when XDG_RUNTIME_DIR is unset
    shared.mkdir()
    if how == "world-writable":
        shared.chmod(0o777)
    else:
        os.chown(shared, 65534, 65534)  # nobody (the tests run as root, so they may)
        shared.chmod(0o755)
    with pytest.raises(ApplianceError, match=f"status socket folder {shared} is") as caught:
        start(shared / "appliance" / "status.sock")
    assert "XDG_RUNTIME_DIR" in str(caught.value)
    assert not (shared / "appliance" / "status.sock").exists()
