"""doctor's echo cancellation check: the config's choice against calibrate's echo, and the running daemon's own
figures read from a status socket that answers as the daemon's does."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.config.schema import AudioConfig, CalibrationConfig, Config
from appliance.doctor import Status
from appliance.doctor.echo import echo_check


def _config(mode: str, level: float | None) -> Config:
    return Config(audio=AudioConfig(echo_cancellation=mode), calibration=CalibrationConfig(echo_level_db=level))


@pytest.fixture
def daemon_says(tmp_path: Path) -> Iterator[object]:
    """``daemon_says(figures)``: a status socket answering once with ``figures`` as the echo canceller's."""
    servers: list[tuple[socket.socket, threading.Thread]] = []

    def start(figures: dict[str, object] | None) -> Path:
        path = tmp_path / "status.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(1)

        def answer() -> None:
            conn, _ = server.accept()
            with conn:
                doc = {"pid": 42, "state": "waiting_for_wake", "echo_cancellation": figures}
                conn.sendall(json.dumps(doc).encode() + b"\n")

        thread = threading.Thread(target=answer, daemon=True)
        thread.start()
        servers.append((server, thread))
        return path

    yield start
    for server, thread in servers:
        thread.join(5)
        server.close()


def test_off_with_a_loud_echo_warns_and_names_the_setting(tmp_path: Path) -> None:
    result = echo_check(_config("off", -8.0), [tmp_path / "none.sock"], "appliance-cli")
    assert result.status is Status.WARN
    assert "-8 dB" in result.detail and "interrupt its own replies" in result.detail
    assert "audio.echo_cancellation" in result.fix


def test_auto_without_a_calibrated_echo_is_off_and_fine(tmp_path: Path) -> None:
    result = echo_check(_config("auto", None), [tmp_path / "none.sock"], "appliance-cli")
    assert result.status is Status.OK and result.detail.startswith("off (auto: no echo path calibrated")


def test_on_reports_what_the_running_daemons_canceller_takes_out(daemon_says) -> None:  # type: ignore[no-untyped-def]
    path = daemon_says({"erle_db": 34.6, "converged": True})
    result = echo_check(_config("auto", -6.0), [path], "appliance-cli")
    assert result.status is Status.OK and "takes out 35 dB" in result.detail and "(converged)" in result.detail


def test_a_canceller_that_has_not_converged_warns_with_the_fix(daemon_says) -> None:  # type: ignore[no-untyped-def]
    path = daemon_says({"erle_db": 4.0, "converged": False})
    result = echo_check(_config("on", -6.0), [path], "appliance-cli")
    assert result.status is Status.WARN and "not converged" in result.detail
    assert "calibrate" in result.fix
