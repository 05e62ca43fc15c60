"""``appliance-cli models fetch | list | verify``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from appliance.cli.common import models_from
from appliance.models.fetch import fetch_model
from appliance.models.manifest import PROFILES, ROLES, profile_choice, select
from appliance.models.store import Status


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("models", help="fetch, list and verify models")
    msub = p.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    for action, help_text in (
        ("fetch", "download or convert models (default set unless --role/--name/--all)"),
        ("list", "what is present, size, licence, verified or not"),
        ("verify", "check every present model's sha256"),
    ):
        a = msub.add_parser(action, help=help_text)
        a.add_argument("--role", choices=ROLES, default=None)
        a.add_argument("--name", default=None)
        a.add_argument("--all", action="store_true", help="every model in the manifest")
        if action == "fetch":
            a.add_argument(
                "--profile",
                choices=PROFILES,
                default="default",
                help="a set of models: default, or small (a smaller LLM for devices with 2 GB of memory)",
            )
            a.add_argument("--force", action="store_true", help="fetch again even if present and verified")
            a.add_argument("--quiet", action="store_true", help="no progress bars")
        else:
            a.add_argument("--json", action="store_true")
        a.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    models = models_from(args)
    profile = getattr(args, "profile", "default")
    if args.all:
        specs = list(models.specs.values())
    else:
        specs = select(models.specs, role=args.role, name=args.name, profile=profile)
    if args.models_command == "fetch":
        for spec in specs:
            fetch_model(models.store, spec, force=args.force, quiet=args.quiet)
        choice = profile_choice(models.specs, profile) if not (args.role or args.name or args.all) else {}
        if choice:
            lines = "".join(f'\n  [{role}]\n  model = "{name}"' for role, name in choice.items())
            print(f"to use the {profile} profile, put this in the config (appliance-cli config show):{lines}")
        return 0
    if args.models_command == "list" and not (args.role or args.name):
        specs = list(models.specs.values())
    full = args.models_command == "verify"
    rows: list[dict[str, Any]] = []
    broken = 0
    for spec in specs:
        check = models.store.check(spec, full=full)
        if full and check.status is Status.OK:
            models.store.mark_verified(spec)
        broken += check.status is Status.CORRUPT or (full and check.status is Status.MISSING)
        rows.append(
            {
                "name": spec.name,
                "role": spec.role,
                "default": spec.default,
                "status": check.status.value,
                "detail": check.detail,
                "size": spec.size,
                "license": spec.license,
                "path": str(check.path),
            }
        )
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        for r in rows:
            mark = "*" if r["default"] else " "
            print(
                f"{mark} {r['name']:<30} {r['role']:<13} {r['status']:<8} {r['size'] / 1e6:7.1f} MB  "
                f"{r['detail']:<34} {r['license']}"
            )
        print(f"models directory: {models.store.root}   (* = embedded default)")
        if any("non-commercial" in str(r["license"]) for r in rows):
            print("note: openWakeWord's pretrained wake-word models are licensed for non-commercial use only.")
    if broken:
        print(f"{broken} model(s) missing or corrupted: run `appliance-cli models fetch`", file=sys.stderr)
        return 1
    return 0
