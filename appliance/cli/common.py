"""Helpers the subcommands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.config import Config, find_config, load_config
from appliance.engines import Models


def config_from(args: argparse.Namespace) -> Config:
    """The config named by ``--config`` (or found in the usual places), read once per command."""
    config: Config | None = getattr(args, "_config", None)
    if config is None:
        config = load_config(find_config(args.config))
        args._config = config
    return config


def models_from(args: argparse.Namespace) -> Models:
    """``--models-dir``, else the config's ``models.dir``, else the default."""
    explicit = args.models_dir or config_from(args).models.dir
    return Models(Path(explicit) if explicit else None)
