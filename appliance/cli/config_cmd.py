"""``appliance-cli config show|check``: the effective configuration, and whether it will start."""

from __future__ import annotations

import argparse
import sys

from appliance.cli.common import config_from, models_from
from appliance.config import check_config, to_toml
from appliance.providers.chains import check_chains


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("config", help="show or check the configuration")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print the effective config as TOML (secrets masked)")
    show.set_defaults(func=_show)
    check = actions.add_parser("check", help="validate the config, the models it names and the sound devices")
    check.add_argument("--no-devices", action="store_true", help="skip the sound-device check (no sound server)")
    check.set_defaults(func=_check)


def _show(args: argparse.Namespace) -> int:
    print(to_toml(config_from(args)), end="")
    return 0


def _check(args: argparse.Namespace) -> int:
    config = config_from(args)
    check_chains(config)
    warning = check_config(config, models_from(args), devices=not args.no_devices)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"config ok: {config.source or 'built-in defaults'}")
    return 0
