"""Reading the config file: TOML -> validated frozen dataclasses, with one clear line for anything wrong."""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from appliance.config.schema import SECTIONS, Config
from appliance.config.service import SERVICE_CONFIG, user_config_path
from appliance.errors import ConfigError

CONFIG_ENV = "APPLIANCE_CONFIG"
CREDENTIALS_ENV = "CREDENTIALS_DIRECTORY"
"""systemd's ``LoadCredential=`` directory: a secret named like its key (``hub_token``) is read from there."""


def find_config(explicit: str | Path | None = None) -> Path | None:
    """``--config``, else ``$APPLIANCE_CONFIG``, else the user's file, else the service's, else none (defaults)."""
    if explicit:
        path = Path(explicit)
        _not_a_directory(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found; create it (`appliance-cli config show > {path}`)")
        return path
    env = os.environ.get(CONFIG_ENV)
    if env:
        _not_a_directory(Path(env))
        if not Path(env).is_file():
            raise ConfigError(f"config file {env} (from ${CONFIG_ENV}) not found; fix or unset the variable")
        return Path(env)
    for candidate in (user_config_path(), SERVICE_CONFIG):
        _not_a_directory(candidate)  # never skipped in silence for the built-in defaults
        if candidate.is_file():
            return candidate
    return None


def _not_a_directory(path: Path) -> None:
    if path.is_dir():
        raise ConfigError(
            f"config {path} is a directory, not a file; give the file's path, e.g. {path / 'config.toml'}"
        )


def load_config(path: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (None: built-in defaults), then secrets from the environment and systemd credentials."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config {path}: not valid TOML ({exc}); fix the syntax") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"config {path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8"
            ) from exc
        except OSError as exc:
            raise ConfigError(f"config {path}: cannot be read ({exc.strerror}); check its permissions") from exc
    try:
        return parse_config(data, env, source=path)
    except ConfigError as exc:
        raise ConfigError(f"config {path}: {exc}" if path else str(exc)) from exc


def parse_config(data: Mapping[str, Any], env: Mapping[str, str], source: Path | None = None) -> Config:
    unknown = [name for name in data if name not in SECTIONS]
    if unknown:
        hint = _hint(unknown[0], SECTIONS)
        raise ConfigError(f"unknown section [{unknown[0]}]{hint}; sections: {', '.join(SECTIONS)}")
    sections: dict[str, Any] = {}
    for name, cls in SECTIONS.items():
        table = data.get(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"{name} must be a table ([{name}]), not a {type(table).__name__}")
        sections[name] = parse_section(name, cls, table, env)
    return Config(**sections, source=source)


def parse_section(name: str, cls: type[Any], table: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """One table; a field that is itself a dataclass is a nested table (``[cloud.openai]``), read the same way
    whether or not the file has it (its secrets may come from the environment)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in table:
        if key not in fields:
            raise ConfigError(f"unknown key {name}.{key}{_hint(key, fields)}; allowed: {', '.join(fields)}")
    values: dict[str, Any] = {}
    for key, hint in hints.items():
        if key not in fields:
            continue
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            sub = table.get(key, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"{name}.{key} must be a table ([{name}.{key}]), not a {type(sub).__name__}")
            values[key] = parse_section(f"{name}.{key}", hint, sub, env)
        elif key in table:
            values[key] = coerce(f"{name}.{key}", table[key], hint)
    values.update(_secrets(cls, env))
    return cls(**values)


def coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the field's type; an int is taken where a float is asked for."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType):  # X | None: TOML has no null, so a value is always the X
        return coerce(key, value, next(a for a in args if a is not type(None)))
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f'{key} must be a list of strings, e.g. ["hey_jarvis"], not {value!r}')
        return tuple(value)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (bool, str) and isinstance(value, hint):
        return value
    wanted = {float: "a number", int: "a whole number", bool: "true or false", str: "a string in quotes"}[hint]
    raise ConfigError(f"{key} must be {wanted}, not {value!r}")


def secret_keys(cls: type[Any]) -> list[dataclasses.Field[Any]]:
    return [f for f in dataclasses.fields(cls) if f.metadata.get("secret")]


def _secrets(cls: type[Any], env: Mapping[str, str]) -> dict[str, str]:
    """Secrets from the environment (``HF_TOKEN``...) or a systemd credential (named by the field, or by its
    ``credential``); either beats the file."""
    found: dict[str, str] = {}
    credentials = env.get(CREDENTIALS_ENV)
    for f in secret_keys(cls):
        credential = Path(credentials) / f.metadata.get("credential", f.name) if credentials else None
        if f.metadata.get("env") and env.get(f.metadata["env"]):
            found[f.name] = env[f.metadata["env"]]
        elif credential is not None and credential.is_file():
            found[f.name] = credential.read_text(encoding="utf-8").strip()
    return found


def _hint(word: str, choices: Mapping[str, Any]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]}?)" if close else ""
