"""``appliance-cli transcribe FILE...``: the transcript of each file. A file longer than Whisper's 30 s is read in
blocks and cut into utterances by the VAD, each transcribed on its own, in the memory of one block."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

from appliance.audio.wav import audio_seconds, read_audio
from appliance.cli.common import models_from
from appliance.engines import DEFAULT_STT, EngineChoice
from appliance.stt.segments import LONG, transcribe_segments


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("transcribe", help="print the transcript of each audio file (any WAV rate)")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--model", default=DEFAULT_STT, help=f"STT model name (default {DEFAULT_STT})")
    p.add_argument("--json", action="store_true", help="one JSON object per file: text, timings, confidence")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.files]
    lengths = [audio_seconds(p) for p in paths]  # a bad file fails before any model loads
    short = {p: read_audio(p) for p, seconds in zip(paths, lengths, strict=True) if seconds <= LONG}
    models = models_from(args)
    stt = models.stt(EngineChoice(stt=args.model))
    vad = models.vad(EngineChoice()) if len(short) < len(paths) else None

    def show(path: Path, text: str, fields: dict[str, object]) -> None:
        if args.json:
            print(json.dumps({"file": str(path), "text": text, **fields}))
        else:
            print(f"{path}: {text}" if len(paths) > 1 else text)

    async def go() -> None:
        for path, seconds in zip(paths, lengths, strict=True):
            if path not in short:
                assert vad is not None
                segments = await transcribe_segments(path, vad, stt)
                fields: dict[str, object] = {
                    "audio_seconds": round(seconds, 3),
                    "segments": [
                        {"start": round(g.start, 2), "end": round(g.end, 2), "text": g.text} for g in segments
                    ],
                }
                show(path, " ".join(g.text for g in segments), fields)
                continue
            ev = await stt.recognize(short[path])
            data, m = ev.alternatives[0], ev.metrics
            assert m is not None
            show(
                path,
                data.text,
                {
                    "language": data.language,
                    "confidence": round(data.confidence, 3),
                    "audio_seconds": round(m.audio_duration, 3),
                    "latency": round(m.duration, 3),
                    "rtf": round(m.rtf, 3),
                    "audio_ctx": m.audio_ctx,
                },
            )

    try:
        asyncio.run(go())
    finally:
        stt.close()
        if vad is not None:
            vad.close()
    return 0
