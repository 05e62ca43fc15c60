"""``appliance-cli say "TEXT" -o out.wav``: synthesize speech."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import numpy as np

from appliance.audio.frame import AudioFrame
from appliance.audio.resample import resample
from appliance.audio.wav import write_wav
from appliance.cli.common import models_from
from appliance.engines import DEFAULT_TTS, EngineChoice
from appliance.errors import ConfigError


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("say", help="synthesize TEXT into a WAV file")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("-o", "--output", required=True, help="WAV file to write")
    p.add_argument("--rate", type=int, default=None, help="resample to this rate (default: the voice's)")
    p.add_argument("--voice", default=DEFAULT_TTS)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.text.strip():
        raise ConfigError("TEXT is empty; give the words to speak")
    if args.rate is not None and not 8000 <= args.rate <= 192000:
        raise ConfigError(f"--rate {args.rate} is out of range; use 8000 to 192000")
    tts = models_from(args).tts(EngineChoice(tts=args.voice))

    async def go() -> AudioFrame:
        stream = tts.synthesize(args.text)
        try:
            parts = [a.frame.data async for a in stream]
        finally:
            await stream.aclose()
        return AudioFrame(np.concatenate(parts) if parts else np.zeros(0, np.int16), tts.sample_rate)

    try:
        frame = asyncio.run(go())
    finally:
        tts.close()
    if not frame.samples_per_channel:
        raise ConfigError("TEXT has nothing speakable (no letters or digits)")
    if args.rate:
        frame = resample(frame, args.rate)
    write_wav(Path(args.output), frame)
    print(f"wrote {args.output}: {frame.seconds:.2f} s at {frame.sample_rate} Hz")
    return 0
