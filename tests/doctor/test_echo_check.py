"""doctor's echo cancellation check: the config's choice against calibrate's echo, and the running daemon's own
figures read from a status socket that answers as the daemon's does."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path

from appliance.config.schema import AudioConfig, CalibrationConfig, Config
from appliance.doctor import Status
from appliance.doctor.echo import echo_check
from tests.doctor.status_socket import answering


def _config(mode: str, level: float | None) -> Config:
    return Config(audio=AudioConfig(echo_cancellation=mode), calibration=CalibrationConfig(echo_level_db=level))


def test_off_with_a_loud_echo_warns_and_names_the_setting(tmp_path: Path) -> None:
    result = echo_check(_config("off", -8.0), [tmp_path / "none.sock"], "appliance-cli")
    assert result.status is Status.WARN
    assert "-8 dB" in result.detail and "interrupt its own replies" in result.detail
    assert "audio.echo_cancellation" in result.fix


def test_auto_without_a_calibrated_echo_is_off_and_fine(tmp_path: Path) -> None:
    result = echo_check(_config("auto", None), [tmp_path / "none.sock"], "appliance-cli")
    assert result.status is Status.OK and result.detail.startswith("off (auto: no echo path calibrated")


def _daemon_says(tmp_path: Path, figures: dict[str, object]) -> AbstractContextManager[Path]:
    """The status socket of a daemon whose echo canceller has ``figures``."""
    return answering(tmp_path / "status.sock", {"pid": 42, "state": "speaking", "echo_cancellation": figures})


def test_on_reports_what_the_running_daemons_canceller_takes_out(tmp_path: Path) -> None:
    with _daemon_says(tmp_path, {"erle_db": 34.6, "converged": True}) as path:
        result = echo_check(_config("auto", -6.0), [path], "appliance-cli")
    assert result.status is Status.OK and "takes out 35 dB" in result.detail and "(converged)" in result.detail


def test_a_canceller_that_has_not_converged_warns_with_the_fix(tmp_path: Path) -> None:
    with _daemon_says(tmp_path, {"erle_db": 4.0, "converged": False}) as path:
        result = echo_check(_config("on", -6.0), [path], "appliance-cli")
    assert result.status is Status.WARN and "not converged" in result.detail
    assert "calibrate" in result.fix
