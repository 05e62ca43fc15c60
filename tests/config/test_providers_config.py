"""The providers of each stage in the config: the defaults send nothing off the device, a cloud provider needs
``privacy.allow_cloud`` and its key, and every mistake is one line naming the key and where to fix it."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.config import load_config, to_toml
from appliance.config.write import MASK
from appliance.errors import ConfigError
from appliance.providers.chains import check_chains, describe
from tests.config.test_config import cli, write

CLOUD = '[privacy]\nallow_cloud = true\n[llm]\nproviders = ["openai", "local"]\n'


def test_by_default_every_stage_is_local_and_nothing_may_leave_the_device() -> None:
    config = load_config(None, env={})
    assert describe(config) == {"stt": "local", "llm": "local", "tts": "local"}
    assert config.privacy.allow_cloud is False
    assert (config.stt.attempt_timeout, config.llm.attempt_timeout, config.tts.attempt_timeout) == (1.5, 1.0, 1.0)
    check_chains(config)


def test_the_users_example_config_loads_with_keys_from_the_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[privacy]\nallow_cloud = true\n[llm]\nproviders = ["local", "openai"]\n'
        '[stt]\nproviders = ["deepgram", "local"]\n[tts]\nproviders = ["elevenlabs", "local"]\n'
        '[cloud.openai]\nbase_url = "https://api.openai.com/v1"\nmodel = "gpt-4o-mini"\n'
        '[cloud.deepgram]\nmodel = "nova-3"\n[cloud.elevenlabs]\nvoice_id = "JBFqnCBsd6RMkjVDRZzb"\n',
    )
    env = {"OPENAI_API_KEY": "sk-o", "DEEPGRAM_API_KEY": "dg-k", "ELEVENLABS_API_KEY": "el-k"}
    config = load_config(path, env=env)
    assert describe(config) == {"stt": "deepgram -> local", "llm": "local -> openai", "tts": "elevenlabs -> local"}
    assert (config.cloud.openai.api_key, config.cloud.deepgram.api_key, config.cloud.elevenlabs.api_key) == (
        "sk-o",
        "dg-k",
        "el-k",
    )
    check_chains(config)
    shown = to_toml(config)
    assert "[cloud.openai]" in shown and "[cloud.elevenlabs]" in shown and f'api_key = "{MASK}"' in shown
    assert not any(key in shown or key in repr(config) for key in env.values())


def test_keys_come_from_systemd_credentials_named_per_provider(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "openai_api_key").write_text("sk-from-credential\n")
    config = load_config(write(tmp_path, CLOUD), env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.cloud.openai.api_key == "sk-from-credential"
    assert config.cloud.deepgram.api_key is None  # each provider reads its own credential only


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[llm]\nproviders = ["openai", "local"]\n',
            "llm.providers names 'openai' but privacy.allow_cloud is false; set [privacy] allow_cloud = true",
        ),
        ('[stt]\nproviders = ["whisper"]\n', "stt.providers: unknown provider 'whisper'; use any of local, openai"),
        (
            '[llm]\nproviders = ["elevenlabs"]\n',
            "llm.providers: unknown provider 'elevenlabs'; use any of local, openai",
        ),
        ("[tts]\nproviders = []\n", 'tts.providers is empty; name at least one, e.g. ["local"]'),
        ('[tts]\nproviders = ["local", "local"]\n', "tts.providers names a provider twice"),
        ("[llm]\nattempt_timeout = 0\n", "llm.attempt_timeout 0.0 is out of range; use 0.1 to 30 seconds"),
        ('[cloud.openai]\nbase_url = "api.openai.com"\n', "cloud.openai.base_url = 'api.openai.com' is not a URL"),
        ('[cloud.deepgram]\nbase_url = "https://x/v1/listen"\n', "use wss://host[:port]/path"),
        ("[cloud.openia]\n", "unknown key cloud.openia (did you mean openai?)"),
        ('[cloud.openai]\nmodle = "x"\n', "unknown key cloud.openai.modle (did you mean model?)"),
        ("[cloud]\nopenai = 3\n", "cloud.openai must be a table ([cloud.openai])"),
    ],
)
def test_a_provider_mistake_is_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert expected in str(caught.value)
    proc = cli("--config", str(path), "config", "check", "--no-devices")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and expected in proc.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CLOUD, "llm.providers names 'openai' but cloud.openai.api_key is not set; export OPENAI_API_KEY=..."),
        (
            '[privacy]\nallow_cloud = true\n[stt]\nproviders = ["deepgram", "local"]\n',
            "cloud.deepgram.api_key is not set; export DEEPGRAM_API_KEY=... "
            "(or the systemd credential deepgram_api_key",
        ),
        (
            '[privacy]\nallow_cloud = true\n[tts]\nproviders = ["elevenlabs"]\n[cloud.elevenlabs]\napi_key = "k"\n',
            "tts.providers names 'elevenlabs' but cloud.elevenlabs.voice_id is not set; set voice_id under "
            "[cloud.elevenlabs] in",
        ),
    ],
)
def test_a_named_provider_without_its_key_is_one_line_at_start(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    config = load_config(path, env={})  # the file is fine: the key may come from the environment at start
    with pytest.raises(ConfigError, match="is not set"):
        check_chains(config)
    env = {"OPENAI_API_KEY": "", "DEEPGRAM_API_KEY": "", "ELEVENLABS_API_KEY": ""}
    for command in (("config", "check", "--no-devices"), ("run",), ("chat", "Hello")):
        proc = cli("--config", str(path), *command, env=env)
        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stderr.count("\n") == 1 and expected in proc.stderr, proc.stderr
        assert "models loaded" not in proc.stderr


def test_a_server_on_the_lan_needs_no_key(tmp_path: Path) -> None:
    path = write(tmp_path, CLOUD + '[cloud.openai]\nbase_url = "http://192.168.1.20:8080/v1"\n')
    check_chains(load_config(path, env={}))
