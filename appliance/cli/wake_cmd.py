"""``appliance-cli wake FILE...``: wake-word detections with times and scores (a file is read in blocks, and
the wake model hears only its sounds above the VAD's energy floor)."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from appliance.audio.wav import audio_seconds
from appliance.cli.common import models_from
from appliance.engines import EngineChoice
from appliance.pipeline import detect_wake_in_file
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
    paths = [Path(p) for p in args.files]
    for path in paths:
        audio_seconds(path)  # a bad file fails before any model loads
    choice = EngineChoice(wake_words=tuple(args.word or ("hey_jarvis",)), wake=WakeSettings(threshold=args.threshold))
    detector = models_from(args).wake(choice)
    try:
        for path in paths:
            detections = asyncio.run(detect_wake_in_file(detector, path))
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
