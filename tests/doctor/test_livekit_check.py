"""``doctor`` checks the LiveKit bridge when ``[livekit]`` turns it on: settings, token, and one join of the
room against the loopback LiveKit server (the real SDK), each failure with its fix."""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from livekit import api

from appliance.config import Config
from appliance.config.livekit import LiveKitConfig
from appliance.doctor.livekit import livekit_checks
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.livekit import API_KEY, API_SECRET, LiveKitServer
from appliance.rig.loopback.server import ServerThread, serve_in_thread
from tests.doctor.test_doctor import config_file, doctor


@pytest.fixture
def livekit() -> Iterator[ServerThread]:
    with serve_in_thread(LiveKitServer()) as thread:
        yield thread


def server(thread: ServerThread) -> LiveKitServer:
    assert isinstance(thread.server, LiveKitServer)
    return thread.server


def checks(**settings: object) -> dict[str, dict[str, str]]:
    lk = LiveKitConfig(**{"mode": "agent", "room": "kitchen", "identity": "kitchen", **settings})  # type: ignore[arg-type]
    return {c.name: c.to_dict() for c in livekit_checks(Config(livekit=lk))}


def test_with_livekit_off_there_is_one_skip_line() -> None:
    results = livekit_checks(Config())
    assert [(r.name, r.status.value) for r in results] == [("livekit", "skip")]
    assert "off" in results[0].detail


def test_a_missing_secret_fails_the_settings_with_the_fix_and_nothing_else_is_tried() -> None:
    found = checks(url="ws://127.0.0.1:9", api_key=API_KEY)
    settings = found["livekit.settings"]
    assert settings["status"] == "fail" and "livekit.api_secret is not set" in settings["detail"]
    assert settings["fix"].startswith("export LIVEKIT_API_SECRET=")
    assert found["livekit.token"]["status"] == found["livekit.connect"]["status"] == "skip"


def test_a_key_the_server_refuses_fails_the_join_naming_the_key(livekit: ServerThread) -> None:
    found = checks(url=server(livekit).ws_url, api_key="APIwrong", api_secret=API_SECRET)
    assert found["livekit.settings"]["status"] == found["livekit.token"]["status"] == "ok"
    join = found["livekit.connect"]
    assert join["status"] == "fail"
    refused = f"the LiveKit server at {server(livekit).ws_url} refused the API key (LIVEKIT_API_KEY)"
    assert join["detail"] == f"{refused}: it has no such key"
    assert join["fix"].startswith("use a key of this server")
    assert API_SECRET not in str(found)


def test_a_refused_port_fails_the_join_once_without_retries(livekit: ServerThread) -> None:
    livekit.set_fault(Fault.REFUSED)
    found = checks(url=server(livekit).ws_url, api_key=API_KEY, api_secret=API_SECRET, reconnect_for=60.0)
    join = found["livekit.connect"]
    assert join["status"] == "fail" and "(connection refused)" in join["detail"]
    assert join["fix"] == "is the LiveKit server running? check livekit.url"
    assert float(join["seconds"]) < 2.0  # one attempt, though reconnect_for would allow a minute of them


def test_the_join_is_one_attempt_within_connect_timeout_as_the_doctors_own_identity(livekit: ServerThread) -> None:
    """The stub accepts the token and then sends nothing (it cannot host a room): the join ends at the timeout."""
    found = checks(url=server(livekit).ws_url, api_key=API_KEY, api_secret=API_SECRET, connect_timeout=1.0)
    join = found["livekit.connect"]
    assert join["status"] == "fail" and join["detail"].endswith("within 1 s")
    assert 1.0 <= float(join["seconds"]) < 2.0
    claims = server(livekit).last_claims
    assert claims is not None and claims["sub"] == "kitchen-doctor"
    assert server(livekit).paths.count("/rtc/v1") == 1


def test_a_premade_token_is_checked_and_its_join_skipped_while_the_service_runs() -> None:
    grants = api.VideoGrants(room_join=True, room="kitchen")
    token = api.AccessToken(API_KEY, API_SECRET).with_identity("kitchen").with_grants(grants)
    lk = LiveKitConfig(
        mode="agent", url="ws://127.0.0.1:9", room="kitchen", token=token.with_ttl(datetime.timedelta(hours=2)).to_jwt()
    )
    found = {c.name: c for c in livekit_checks(Config(livekit=lk), service_active=True)}
    token_line = found["livekit.token"]
    assert token_line.status.value == "ok" and token_line.detail.startswith("LIVEKIT_TOKEN: 'kitchen' may join room")
    assert re.search(r"valid (1 h 59 min|2 h) \(", token_line.detail), token_line.detail
    assert found["livekit.connect"].status.value == "skip" and "systemctl stop" in found["livekit.connect"].fix


def test_doctor_runs_the_livekit_checks_from_the_config_and_the_environment(
    tmp_path: Path, livekit: ServerThread
) -> None:
    config = config_file(tmp_path, f'[livekit]\nmode = "agent"\nurl = "{server(livekit).ws_url}"\nroom = "kitchen"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVEKIT_")}
    env.update(LIVEKIT_API_KEY=API_KEY, LIVEKIT_API_SECRET="not-the-secret-not-the-secret-0123456789")
    code, found = doctor("--no-engines", "--no-devices", options=("--config", str(config)), env=env)
    assert code == 1
    statuses = [found[name]["status"] for name in ("livekit.settings", "livekit.token", "livekit.connect")]
    assert statuses == ["ok", "ok", "fail"]
    assert "the API secret (LIVEKIT_API_SECRET) does not match" in found["livekit.connect"]["detail"]
