"""``appliance-cli wake FILE...``: wake-word detections with times and scores."""

from __future__ import annotations

import argparse
import asyncio
import json

from appliance.cli.common import models_from, read_inputs
from appliance.engines import EngineChoice
from appliance.pipeline import detect_wake
from appliance.wake.base import WakeSettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("wake", help="print wake-word detections in audio files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--word",
        action="append",
        default=None,
        help="wake word model (repeatable; default hey_jarvis; see `models list --role wake`)",
    )
    p.add_argument("--threshold", type=float, default=WakeSettings.threshold)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    inputs = read_inputs(args.files)
    choice = EngineChoice(wake_words=tuple(args.word or ("hey_jarvis",)), wake=WakeSettings(threshold=args.threshold))
    detector = models_from(args).wake(choice)
    try:
        for path, audio in inputs:
            detections = asyncio.run(detect_wake(detector, audio))
            for d in detections:
                if args.json:
                    print(
                        json.dumps(
                            {
                                "file": str(path),
                                "wake_word": d.name,
                                "score": round(d.score, 4),
                                "timestamp": round(d.timestamp, 3),
                            }
                        )
                    )
                else:
                    print(f"{path}: {d.name} at {d.timestamp:.2f} s (score {d.score:.3f})")
            if not detections and not args.json:
                print(f"{path}: no wake word")
    finally:
        detector.close()
    return 0
