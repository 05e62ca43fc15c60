"""``appliance-cli calibrate``: tune the VAD and wake thresholds to the room, and record what was measured."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from appliance.calibrate.flow import Calibrator, Options, ask_stdin
from appliance.calibrate.meter import LevelMeter
from appliance.calibrate.report import report_lines
from appliance.cli.common import config_from, models_from
from appliance.config import Config, find_config, load_config, update_config_file, user_config_path
from appliance.errors import ConfigError

MIN_SECONDS, MAX_SECONDS = 1.0, 60.0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "calibrate",
        help="tune the VAD and wake thresholds to the room (noise, your voice, the speaker's echo)",
        description="Measures the room's noise, your voice and the speaker's echo at the microphone, chooses the"
        " VAD, wake and wake-gate thresholds from them and writes them with the measurements to the config: the"
        " --config file, else the one found ($APPLIANCE_CONFIG, the user's, the service's), else the user's"
        " ~/.config/appliance/config.toml (created). The old file is kept as a timestamped .bak beside it.",
    )
    p.add_argument("--duration", type=float, default=5.0, metavar="S", help="seconds of each recording (default 5)")
    p.add_argument("--non-interactive", action="store_true", help="no questions: each phase starts on its own")
    p.add_argument("--no-speaker", action="store_true", help="skip the test sweep through the speaker")
    p.add_argument("--dry-run", action="store_true", help="measure and print, write nothing")
    p.add_argument("--input-device", default=None, metavar="D", help="microphone (default: audio.input_device)")
    p.add_argument("--output-device", default=None, metavar="D", help="speaker (default: audio.output_device)")
    p.set_defaults(func=_run)


def target(args: argparse.Namespace) -> tuple[Path, Config]:
    """The file calibrate writes, and the config it starts from: ``--config``, else the one found, else the user's."""
    if args.config and not Path(args.config).exists():
        path, config = Path(args.config), load_config(None)
    elif (found := find_config(args.config)) is not None:
        return found, config_from(args)
    else:
        path, config = user_config_path(), load_config(None)
    args._config = config  # the file is yet to be written: the rest of the command reads the defaults
    return path, config


def _writable(path: Path) -> bool:
    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    parent = next((p for p in path.parents if p.exists()), None)
    return parent is not None and os.access(parent, os.W_OK)


def _say(line: str) -> None:
    print(line, flush=True)


def _run(args: argparse.Namespace) -> int:
    if not MIN_SECONDS <= args.duration <= MAX_SECONDS:
        raise ConfigError(f"--duration {args.duration:g} is out of range; use {MIN_SECONDS:g} to {MAX_SECONDS:g} s")
    path, config = target(args)
    if not args.dry_run and not _writable(path):
        raise ConfigError(f"cannot write {path}; run as its owner (sudo for the service), pass --config or --dry-run")
    options = Options(
        seconds=args.duration,
        interactive=not args.non_interactive,
        speaker=not args.no_speaker,
        input_device=args.input_device if args.input_device is not None else config.audio.input_device,
        output_device=args.output_device if args.output_device is not None else config.audio.output_device,
    )
    if args.dry_run:
        _say(f"calibrate: dry run, nothing will be written (config: {path})")
    elif path.exists():
        _say(f"calibrate: will update {path} (the old file is kept)")
    else:
        _say(f"calibrate: will create {path}")
    calibrator = Calibrator(config, models_from(args), options, say=_say, meter=LevelMeter(sys.stderr))
    result = calibrator.run()
    for line in report_lines(result):
        _say(line)
    if args.dry_run:
        _say(f"dry run: nothing written to {path}")
        return 0
    if options.interactive and not _confirm(f"Write these to {path}? [Y/n] "):
        _say("nothing written")
        return 0
    backup = update_config_file(path, result.changes())
    _say(f"wrote {path}" + (f" (the old file is kept as {backup})" if backup else ""))
    stale = config.calibration.echo_delay is not None or config.calibration.echo_level_db is not None
    if stale and not result.echo.heard:
        _say("note: [calibration] still holds the echo figures of an earlier run; no echo was measured this time")
    return 0


def _confirm(question: str) -> bool:
    return ask_stdin(question).strip().lower() in ("", "y", "yes")
