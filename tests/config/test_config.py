"""The config file: every mistake is one line naming the key and what is allowed, exit 2, before any model loads."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.config import Config, load_config, to_toml, update_config_file
from appliance.config.write import MASK
from appliance.errors import ConfigError
from appliance.llm.settings import LlamaSettings
from appliance.stt.whispercpp import WhisperSettings
from appliance.tts.piper import PiperSettings
from appliance.vad.base import VADSettings
from appliance.wake.base import WakeSettings


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appliance", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_no_file_gives_the_defaults_the_engines_already_use() -> None:
    config = load_config(None)
    choice = config.engines()
    assert choice.wake_words == ("hey_jarvis",) and choice.stt == "whisper-tiny.en"
    assert config.vad.threshold == 0.5 and config.metrics.enabled is False


def test_each_section_defaults_to_what_its_engine_does_by_itself() -> None:
    """The config declares the user's keys; the local engines' own defaults must agree with them."""
    config = load_config(None)
    pairs = [
        (config.wake, WakeSettings()),
        (config.vad, VADSettings()),
        (config.stt, WhisperSettings()),
        (config.llm, LlamaSettings()),
        (config.tts, PiperSettings()),
    ]
    for section, engine in pairs:
        for f in dataclasses.fields(engine):
            assert getattr(section, f.name) == getattr(engine, f.name), f"{type(section).__name__}.{f.name}"
        assert not isinstance(section, type(engine)), "config sections no longer subclass engine settings"


def test_config_check_loads_no_native_inference_library(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from appliance.cli import main\n"
        "rc = main(['config', 'check', '--no-devices'])\n"
        "loaded = [m for m in ('llama_cpp', 'pywhispercpp', 'onnxruntime', 'piper', 'pyopen_wakeword')"
        " if m in sys.modules]\n"
        "print('loaded:', loaded)\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "loaded: []" in proc.stdout, proc.stdout


def test_values_reach_the_stage_settings_typed(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            '# a comment\n[wake]\nthreshold = 0.6\nwords = ["alexa", "hey_jarvis"]\n'
            "[vad]\nmin_silence_duration = 1\n[stt]\nthreads = 2\n"
            "[agent]\nlistening_timeout = 4\nrequire_wake_word = false\n",
        )
    )
    choice = config.engines()
    assert choice.wake.threshold == 0.6 and choice.wake_words == ("alexa", "hey_jarvis")
    assert choice.vad_settings.min_silence_duration == 1.0 and isinstance(config.vad.min_silence_duration, float)
    assert choice.whisper.threads == 2 and config.agent.listening_timeout == 4.0
    assert config.agent.require_wake_word is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[wake]\ntreshold = 0.5\n", "unknown key wake.treshold (did you mean threshold?); allowed: threshold"),
        ("[wake]\nthreshold = 1.5\n", "wake.threshold = 1.5 is out of range; use a value between 0 and 1"),
        ('[wake]\nthreshold = "high"\n', "wake.threshold must be a number, not 'high'"),
        ("[wake]\nwords = []\n", "wake.words is empty"),
        ('[wake]\nwords = "alexa"\n', "wake.words must be a list of strings"),
        ("[vad]\nthreshold = 0.99\n", "vad.threshold = 0.99 is out of range; use 0.05 to 0.95"),
        ("[stt]\nthreads = 1.5\n", "stt.threads must be a whole number, not 1.5"),
        ("[agent]\nlistening_timeout = -1\n", "agent.listening_timeout = -1.0 must be more than 0 seconds"),
        ('[agent]\nearcons = "yes"\n', "agent.earcons must be true or false"),
        ("[metrics]\nport = 70000\n", "metrics.port 70000 is out of range; use 1 to 65535"),
        ("[llm]\nfirst_token_timeout = 0\n", "llm.first_token_timeout = 0.0 is out of range; use 0.1 to 300 seconds"),
        ("[llm]\nthreads = -4\n", "llm.threads = -4 is out of range; use 0 (automatic) to 64"),
        ("[llm]\ntop_p = 0\n", "llm.top_p = 0.0 is out of range"),
        ("[tts]\ntimeout = 0\n", "tts.timeout = 0.0 is out of range; use 0.1 to 300 seconds"),
        ("[stt]\nthreads = 1000\n", "stt.threads = 1000 is out of range; use 0 (automatic) to 64"),
        ('[log]\nlevel = "loud"\n', "log.level 'loud' is not known; use one of debug, info, warning, error"),
        ("[sevice]\n", "unknown section [sevice] (did you mean service?)"),
        ("[wake\n", "not valid TOML"),
        ("wake = 3\n", "wake must be a table"),
    ],
)
def test_a_mistake_is_one_line_naming_the_key_and_what_is_allowed(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert expected in str(caught.value) and str(path) in str(caught.value)
    proc = cli("--config", str(path), "config", "check", "--no-devices")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and expected in proc.stderr


def test_run_refuses_a_bad_config_at_once_without_loading_a_model(tmp_path: Path) -> None:
    path = write(tmp_path, "[vad]\nthreshold = 2\n")
    start = time.monotonic()
    proc = cli("--config", str(path), "run")
    assert proc.returncode == 2 and "vad.threshold = 2.0 is out of range" in proc.stderr
    assert "models loaded" not in proc.stderr and time.monotonic() - start < 20


def test_a_model_that_is_not_there_names_its_key(tmp_path: Path) -> None:
    unknown = cli(
        "--config", str(write(tmp_path, '[stt]\nmodel = "whisper-large"\n')), "config", "check", "--no-devices"
    )
    assert unknown.returncode == 2 and "stt.model = 'whisper-large': unknown model" in unknown.stderr
    empty = tmp_path / "empty-models"
    empty.mkdir()
    missing = cli("--config", str(write(tmp_path, "")), "--models-dir", str(empty), "run")
    assert missing.returncode == 2 and "is missing" in missing.stderr and "appliance-cli models fetch" in missing.stderr
    assert missing.stderr.startswith("error: wake.words[0] = 'hey_jarvis': model hey_jarvis is missing")


def test_an_unknown_sound_device_fails_at_start(tmp_path: Path, sound_server) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, '[audio]\ninput_device = "USB PnP Sound Device"\n')
    env = {k: sound_server.env[k] for k in ("PULSE_SERVER", "XDG_RUNTIME_DIR")}
    check = cli("--config", str(path), "config", "check", env=env)
    assert check.returncode == 2
    assert "audio.input_device = 'USB PnP Sound Device': no input sound device matches" in check.stderr
    assert "pulse" in check.stderr  # what there is to choose from
    run = cli("--config", str(path), "run", env=env)
    assert run.returncode == 2 and "audio.input_device" in run.stderr and "models loaded" not in run.stderr
    good = cli(
        "--config",
        str(write(tmp_path, '[audio]\ninput_device = "pulse"\noutput_device = "pulse"\n')),
        "config",
        "check",
        env=env,
    )
    assert good.returncode == 0 and "config ok" in good.stdout


def test_secrets_come_from_the_environment_or_a_credential_and_are_never_shown(tmp_path: Path) -> None:
    path = write(tmp_path, '[models]\nhub_token = "from-file"\n')
    assert load_config(path, env={}).models.hub_token == "from-file"
    assert load_config(path, env={"HF_TOKEN": "from-env"}).models.hub_token == "from-env"
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "hub_token").write_text("from-credential\n")
    config = load_config(path, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.models.hub_token == "from-credential"
    assert "from-credential" not in repr(config) and "from-credential" not in to_toml(config)
    assert f'hub_token = "{MASK}"' in to_toml(config)
    shown = cli("--config", str(path), "config", "show", env={"HF_TOKEN": "s3cret"})
    assert shown.returncode == 0 and "s3cret" not in shown.stdout and "from-file" not in shown.stdout


def test_config_show_prints_a_file_that_loads_back_to_the_same_config(tmp_path: Path) -> None:
    path = write(tmp_path, '[wake]\nthreshold = 0.7\n[agent]\ninstructions = "Be brief."\n')
    shown = cli("--config", str(path), "config", "show")
    assert shown.returncode == 0
    again = load_config(write(tmp_path, shown.stdout))
    assert again == load_config(path) and isinstance(again, Config)


def test_update_keeps_comments_and_a_backup_and_refuses_a_bad_value(tmp_path: Path) -> None:
    path = write(tmp_path, "# living room\n[vad]\nthreshold = 0.5 # default\n")
    path.chmod(0o640)
    backup = update_config_file(path, {"vad": {"threshold": 0.62}, "calibration": {"snr_db": 21.5}})
    text = path.read_text()
    assert "# living room" in text and "threshold = 0.62" in text and "snr_db = 21.5" in text
    assert backup is not None and backup.read_text() == "# living room\n[vad]\nthreshold = 0.5 # default\n"
    assert oct(path.stat().st_mode & 0o777) == "0o640"
    with pytest.raises(ConfigError, match=r"vad\.threshold = 3\.0 is out of range"):
        update_config_file(path, {"vad": {"threshold": 3.0}})
    assert path.read_text() == text  # nothing written


def test_a_directory_or_a_file_that_is_not_utf8_is_named_for_what_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "conf.d"
    folder.mkdir()
    proc = cli("--config", str(folder), "config", "check", "--no-devices")
    assert proc.returncode == 2 and f"config {folder} is a directory, not a file" in proc.stderr
    home = tmp_path / "home"
    (home / ".config" / "appliance" / "config.toml").mkdir(parents=True)  # where the user's file would be
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "APPLIANCE_CONFIG": ""}
    found = cli("config", "check", "--no-devices", env=env)
    assert found.returncode == 2 and "is a directory, not a file" in found.stderr  # not the defaults in silence
    utf16 = tmp_path / "utf16.toml"
    utf16.write_text("[wake]\nthreshold = 0.6\n", encoding="utf-16")
    proc = cli("--config", str(utf16), "config", "check", "--no-devices")
    assert proc.returncode == 2 and "not UTF-8 text" in proc.stderr and "save it as UTF-8" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_a_metrics_address_that_cannot_be_listened_on_fails_check_and_an_open_one_is_warned(tmp_path: Path) -> None:
    foreign = write(tmp_path, '[metrics]\nenabled = true\nhost = "192.0.2.10"\n')  # TEST-NET-1: never ours
    proc = cli("--config", str(foreign), "config", "check", "--no-devices")
    assert proc.returncode == 2 and "metrics.host = '192.0.2.10' cannot be listened on" in proc.stderr
    run = cli("--config", str(foreign), "run")
    assert run.returncode == 2 and "cannot be listened on" in run.stderr and "models loaded" not in run.stderr
    open_to_all = write(tmp_path, '[metrics]\nenabled = true\nhost = "0.0.0.0"\n')
    proc = cli("--config", str(open_to_all), "config", "check", "--no-devices")
    assert proc.returncode == 0 and "config ok" in proc.stdout
    assert proc.stderr.startswith("warning: metrics.host = '0.0.0.0' serves the metrics to the network")
