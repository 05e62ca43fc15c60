"""``appliance-cli``: one subcommand per module, all reaching this ``main()``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from appliance import logs
from appliance.errors import ApplianceError

_COMMANDS = (
    "run",
    "config",
    "models",
    "transcribe",
    "wake",
    "chat",
    "say",
    "converse",
    "bench",
    "calibrate",
    "doctor",
    "status",
    "history",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(prog="appliance-cli", description="Local voice appliance.")
    parser.add_argument(
        "--config",
        default=None,
        metavar="PATH",
        help="config file (default: $APPLIANCE_CONFIG, ~/.config/appliance/config.toml, /etc/appliance/config.toml)",
    )
    parser.add_argument(
        "--models-dir",
        type=str,
        default=None,
        help="where models live (default: $APPLIANCE_MODELS_DIR or the user data dir)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMANDS:
        importlib.import_module(f"appliance.cli.{name}_cmd").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    base = getattr(args, "log_level", logging.WARNING)  # the daemon logs its turns at INFO
    logs.setup(max(logging.DEBUG, base - 10 * min(args.verbose, 2)))
    try:
        code: int = args.func(args)
        return code
    except ApplianceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
