"""install-service and uninstall-service into a temporary root."""

from __future__ import annotations

from pathlib import Path

from appliance.engines import Models
from tests.service.conftest import CONFIG, REPO, SYSTEM_UNIT, USER_UNIT, install, script

WANTS = Path("etc/systemd/system/multi-user.target.wants/appliance.service")


def test_install_puts_unit_config_and_state_in_place_and_enables_the_service(tmp_path: Path) -> None:
    proc = install(tmp_path, "--system")
    assert (tmp_path / SYSTEM_UNIT).is_file()
    assert (tmp_path / CONFIG).read_text() == (REPO / "systemd" / "config.toml").read_text()
    assert (tmp_path / "var/lib/appliance/models").is_dir()
    assert (tmp_path / WANTS).is_symlink()
    assert "installed" in proc.stdout


def test_a_second_install_keeps_a_changed_config_and_follows_its_stop_timeout(tmp_path: Path) -> None:
    install(tmp_path, "--system")
    config = tmp_path / CONFIG
    changed = config.read_text().replace("stop_timeout = 6.0", "stop_timeout = 12.0")
    config.write_text(changed)
    proc = install(tmp_path, "--system")
    assert config.read_text() == changed
    assert f"kept {config}" in proc.stdout
    assert "TimeoutStopSec=20s" in (tmp_path / SYSTEM_UNIT).read_text()
    again = install(tmp_path, "--system")
    assert "unchanged" in again.stdout


def test_an_invalid_config_stops_the_install_and_stays_as_it_is(tmp_path: Path) -> None:
    config = tmp_path / CONFIG
    config.parent.mkdir(parents=True)
    config.write_text("[service]\nstop_timeout = 600\n")
    proc = script("install-service", tmp_path, "--system", "--no-models")
    assert proc.returncode != 0
    assert "service.stop_timeout" in proc.stderr and "not valid" in proc.stderr
    assert config.read_text() == "[service]\nstop_timeout = 600\n"
    assert not (tmp_path / SYSTEM_UNIT).exists()


def test_a_session_sound_server_selects_the_user_unit(tmp_path: Path) -> None:
    wants = tmp_path / "etc/systemd/user/sockets.target.wants"
    wants.mkdir(parents=True)
    (wants / "pipewire-pulse.socket").symlink_to("/usr/lib/systemd/user/pipewire-pulse.socket")
    nobody = script("install-service", tmp_path, "--no-models")
    assert nobody.returncode != 0 and "--for NAME" in nobody.stderr
    proc = install(tmp_path, "--for", "pi")
    assert "pipewire-pulse runs in user sessions" in proc.stdout
    assert (tmp_path / USER_UNIT).is_file() and not (tmp_path / SYSTEM_UNIT).exists()
    assert "User=" not in (tmp_path / USER_UNIT).read_text()


def test_without_a_session_sound_server_the_system_unit_is_chosen(tmp_path: Path) -> None:
    proc = install(tmp_path)
    assert "no session sound server" in proc.stdout
    assert (tmp_path / SYSTEM_UNIT).is_file()


def test_switching_setups_needs_an_uninstall_first(tmp_path: Path) -> None:
    install(tmp_path, "--system")
    proc = script("install-service", tmp_path, "--user", "--for", "pi", "--no-models")
    assert proc.returncode != 0 and "uninstall-service" in proc.stderr


def test_uninstall_removes_the_unit_and_keeps_config_and_state(tmp_path: Path) -> None:
    install(tmp_path, "--system")
    proc = script("uninstall-service", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / SYSTEM_UNIT).exists() and not (tmp_path / WANTS).is_symlink()
    assert (tmp_path / CONFIG).is_file() and (tmp_path / "var/lib/appliance/models").is_dir()


def test_uninstall_purge_removes_config_and_state(tmp_path: Path) -> None:
    install(tmp_path, "--user", "--for", "pi")
    proc = script("uninstall-service", tmp_path, "--purge")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / USER_UNIT).exists()
    assert not (tmp_path / "etc/appliance").exists() and not (tmp_path / "var/lib/appliance").exists()


def test_install_fetches_and_checks_the_models_the_config_names(tmp_path: Path) -> None:
    models = Models()
    seeded = tmp_path / "var/lib/appliance/models"
    for spec in models.specs.values():  # already fetched for the tests: linked, so nothing is downloaded
        if models.store.path(spec).is_file():
            (seeded / spec.file).parent.mkdir(parents=True, exist_ok=True)
            (seeded / spec.file).symlink_to(models.store.path(spec))
    proc = script("install-service", tmp_path, "--system")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "whisper-tiny.en: present, sha256 verified" in proc.stdout
    assert f"config ok: {tmp_path / CONFIG}" in proc.stdout
