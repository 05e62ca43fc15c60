"""Writing config: the effective values as TOML (secrets masked), and changes to a file, kept comments and all."""

from __future__ import annotations

import dataclasses
import shutil
import stat
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit

from appliance.config.load import parse_config
from appliance.config.schema import Config
from appliance.utils.files import write_atomically

MASK = "********"


def to_toml(config: Config, *, mask_secrets: bool = True) -> str:
    """The whole effective config; unset values appear as comments so every key can be found."""
    doc = tomlkit.document()
    doc.add(tomlkit.comment(f"effective config ({config.source or 'built-in defaults'})"))
    for f in dataclasses.fields(config):
        if f.name == "source":
            continue
        doc.add(f.name, _table(getattr(config, f.name), mask_secrets))
    return tomlkit.dumps(doc)


def _table(section: Any, mask_secrets: bool) -> Any:
    table = tomlkit.table(is_super_table=all(dataclasses.is_dataclass(v) for v in vars(section).values()))
    for key in dataclasses.fields(section):
        value = getattr(section, key.name)
        if dataclasses.is_dataclass(value):
            table.add(key.name, _table(value, mask_secrets))
            continue
        if value is not None and key.metadata.get("secret") and mask_secrets:
            value = MASK
        if value is None:
            table.add(tomlkit.comment(f"{key.name} = (unset)"))
        else:
            table.add(key.name, list(value) if isinstance(value, tuple) else value)
    return table


def update_config_file(path: Path, changes: Mapping[str, Mapping[str, Any]]) -> Path | None:
    """Set ``changes`` ({section: {key: value}}) in ``path``, keeping everything else as written.

    The result is validated before anything is written; the old file is kept beside it, with the time in its
    name, and its path returned (None when there was no file yet). The new file replaces the old atomically.
    """
    old_text = path.read_text(encoding="utf-8") if path.exists() else None
    doc = tomlkit.parse(old_text) if old_text is not None else tomlkit.document()
    for section, values in changes.items():
        if section not in doc:
            doc.add(section, tomlkit.table())
        table = doc[section]
        for key, value in values.items():
            table[key] = list(value) if isinstance(value, tuple) else value
    new_text = tomlkit.dumps(doc)
    parse_config(tomllib.loads(new_text), env={}, source=path)  # raises ConfigError: nothing written
    backup = None
    if old_text is not None:
        backup = path.with_name(f"{path.name}.{time.strftime('%Y%m%dT%H%M%S')}.bak")
        shutil.copy2(path, backup)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, new_text, stat.S_IMODE(backup.stat().st_mode) if backup else 0o644)
    return backup
