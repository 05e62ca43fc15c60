"""Helpers the subcommands share."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.audio.frame import AudioFrame
from appliance.audio.wav import read_audio
from appliance.engines import Models


def models_from(args: argparse.Namespace) -> Models:
    return Models(Path(args.models_dir) if args.models_dir else None)


def read_inputs(paths: list[str]) -> list[tuple[Path, AudioFrame]]:
    """Read every file first, so a bad one fails before any model loads."""
    return [(Path(p), read_audio(Path(p))) for p in paths]
