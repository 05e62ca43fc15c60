"""``appliance-cli doctor``: what works and what does not, one line each, with the fix."""

from __future__ import annotations

import argparse
import json
import shlex
import sys

from appliance.doctor import CheckResult, DoctorOptions, Status, run_doctor

LABELS = {Status.OK: "ok", Status.WARN: "warn", Status.FAIL: "FAIL", Status.SKIP: "skip"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "doctor",
        help="check the sound devices, models, engines, machine and service; exit 1 if anything is broken",
    )
    p.add_argument("--json", action="store_true", help="one JSON document instead of lines")
    p.add_argument("--no-engines", action="store_true", help="do not load and run the engines (faster)")
    p.add_argument("--no-devices", action="store_true", help="do not open the sound devices")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cli = ["appliance-cli"]
    if args.config:
        cli += ["--config", args.config]
    if args.models_dir:
        cli += ["--models-dir", args.models_dir]
    options = DoctorOptions(
        config=args.config,
        models_dir=args.models_dir,
        devices=not args.no_devices,
        engines=not args.no_engines,
        cli=shlex.join(cli),
    )
    results: list[CheckResult] = []
    for result in run_doctor(options):
        results.append(result)
        if not args.json:
            print(format_line(result), flush=True)
    counts = {status: sum(r.status is status for r in results) for status in Status}
    healthy = counts[Status.FAIL] == 0
    if args.json:
        doc = {"healthy": healthy, "counts": {s.value: n for s, n in counts.items()}}
        json.dump({**doc, "checks": [r.to_dict() for r in results]}, sys.stdout, indent=2)
        print()
    else:
        print(
            f"{counts[Status.OK]} ok, {counts[Status.WARN]} warnings, {counts[Status.FAIL]} failures, "
            f"{counts[Status.SKIP]} skipped" + ("" if healthy else ": fix the FAIL lines above")
        )
    return 0 if healthy else 1


def format_line(result: CheckResult) -> str:
    line = f"{LABELS[result.status]:<5} {result.name:<28} {result.detail}"
    if result.seconds >= 0.01:
        line += f" [{result.seconds:.2f} s]"
    if result.fix:
        line += f" -> fix: {result.fix}"
    return line
