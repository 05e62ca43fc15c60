"""``appliance-cli transcribe FILE...``: the transcript of each file."""

from __future__ import annotations

import argparse
import asyncio
import json

from appliance.cli.common import models_from, read_inputs
from appliance.engines import DEFAULT_STT, EngineChoice


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("transcribe", help="print the transcript of each audio file (any WAV rate)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--model", default=DEFAULT_STT, help=f"STT model name (default {DEFAULT_STT})")
    p.add_argument("--json", action="store_true", help="one JSON object per file: text, timings, confidence")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    inputs = read_inputs(args.files)
    stt = models_from(args).stt(EngineChoice(stt=args.model))

    async def go() -> None:
        for path, audio in inputs:
            ev = await stt.recognize(audio)
            data, m = ev.alternatives[0], ev.metrics
            assert m is not None
            if args.json:
                print(
                    json.dumps(
                        {
                            "file": str(path),
                            "text": data.text,
                            "language": data.language,
                            "confidence": round(data.confidence, 3),
                            "audio_seconds": round(m.audio_duration, 3),
                            "latency": round(m.duration, 3),
                            "rtf": round(m.rtf, 3),
                            "audio_ctx": m.audio_ctx,
                        }
                    )
                )
            else:
                print(f"{path}: {data.text}" if len(inputs) > 1 else data.text)

    try:
        asyncio.run(go())
    finally:
        stt.close()
    return 0
