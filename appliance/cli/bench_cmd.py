"""``appliance-cli bench``: per-stage and whole-chain figures on real recordings, as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from appliance.bench import DEFAULT_CORPUS, run_bench, run_provider_bench
from appliance.bench.answers import run_answers_bench
from appliance.cli.common import config_from, models_from
from appliance.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("bench", help="measure every stage and the whole chain (JSON on stdout)")
    p.add_argument(
        "--corpus",
        default=str(DEFAULT_CORPUS),
        help="pocketsphinx test data folder (Debian package pocketsphinx-testdata)",
    )
    p.add_argument("--runs", type=int, default=5, help="repetitions of the LLM, TTS and chain measurements")
    p.add_argument("--output", default=None, help="also write the JSON to this file")
    p.add_argument(
        "--no-live", action="store_true", help="skip the daemon measured through a private PulseAudio server"
    )
    p.add_argument("--idle-seconds", type=float, default=60.0, help="how long to measure CPU while waiting")
    p.add_argument(
        "--providers",
        action="store_true",
        help="only the cloud providers on loopback servers: their cost against local, and what each failure adds",
    )
    p.add_argument(
        "--answers",
        action="store_true",
        help="only the answers: spoken and written questions, a 20-turn conversation, the local intents",
    )
    p.add_argument(
        "--echo",
        action="store_true",
        help="only open speakers: a sound card whose speaker the microphone hears; echo cancellation measured",
    )
    p.add_argument(
        "--soak",
        type=int,
        metavar="N",
        default=0,
        help="only N turns in a row through the private sound server: memory and latency per turn",
    )
    p.add_argument("--replies", type=int, default=10, help="with --echo: replies nobody talks over")
    p.add_argument("--barge-ins", type=int, default=20, help="with --echo: replies the user talks over")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.providers:
        report = run_provider_bench(models_from(args), Path(args.corpus), runs=max(1, args.runs))
    elif args.answers:
        report = run_answers_bench(models_from(args), config_from(args).engines())
    elif args.echo:
        report = _echo(args)
    elif args.soak:
        report = _soak(args)
    else:
        report = run_bench(
            models_from(args),
            Path(args.corpus),
            runs=max(1, args.runs),
            live=not args.no_live,
            idle_seconds=args.idle_seconds,
        )
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    _table(report)
    return 0


def _echo(args: argparse.Namespace) -> dict[str, Any]:
    from appliance.bench.echo import EchoBenchOptions, run_echo_bench
    from appliance.engines import EngineChoice

    tts = models_from(args).tts(EngineChoice())
    try:
        options = EchoBenchOptions(replies=max(1, args.replies), barge_ins=max(1, args.barge_ins))
        return run_echo_bench(Path(args.corpus), tts, options)
    finally:
        tts.close()


def _soak(args: argparse.Namespace) -> dict[str, Any]:
    from appliance.bench.soak import run_soak_bench
    from appliance.engines import EngineChoice

    if args.soak < 1:
        raise ConfigError(f"--soak {args.soak}: give the number of turns, 1 or more")
    tts = models_from(args).tts(EngineChoice())
    try:
        return run_soak_bench(Path(args.corpus), tts, args.soak)
    finally:
        tts.close()


def _table(report: dict[str, Any], prefix: str = "") -> None:
    if not prefix:
        print("\nstage             figure                                      value", file=sys.stderr)
    for stage, figures in report.items():
        if not isinstance(figures, dict):
            continue
        if any(isinstance(v, dict) for v in figures.values()):
            _table(figures, prefix=f"{prefix}{stage}.")
            continue
        for name, value in figures.items():
            if isinstance(value, float | int):
                print(f"{prefix + stage:<17} {name:<43} {value}", file=sys.stderr)
