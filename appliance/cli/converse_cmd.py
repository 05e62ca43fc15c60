"""``appliance-cli converse --input in.wav --output out.wav``: the agent on a recording."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from pathlib import Path

from appliance.agent import DEFAULT_INSTRUCTIONS, Agent
from appliance.audio.frame import AudioFrame
from appliance.audio.wav import audio_seconds, read_audio, read_audio_bytes, wav_bytes, write_wav
from appliance.cli.common import config_from, models_from
from appliance.pipeline import TurnResult, converse
from appliance.providers.chains import Stages, check_chains
from appliance.stt.segments import LONG


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("converse", help="the agent on a recording: wake word -> VAD -> STT -> LLM -> TTS")
    p.add_argument("--input", "-i", required=True, help="recording (WAV, any rate); - reads it from stdin")
    p.add_argument("--output", "-o", required=True, help="WAV file for the spoken reply; - writes it to stdout")
    p.add_argument("--word", action="append", default=None, help="wake word (default hey_jarvis)")
    p.add_argument("--no-wake", action="store_true", help="the recording starts with the question")
    p.add_argument("--instructions", default=DEFAULT_INSTRUCTIONS)
    p.add_argument("--realtime", action="store_true", help="play the recording at speaking pace, as a microphone")
    p.add_argument("--json", action="store_true", help="print the turn as JSON (timings included)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    audio: AudioFrame | Path
    if args.input == "-":
        audio = read_audio_bytes(sys.stdin.buffer.read())
    elif audio_seconds(Path(args.input)) > LONG:  # read as it is heard: an hour takes the memory of one block
        audio = Path(args.input)
    else:
        audio = read_audio(Path(args.input))
    to_stdout = args.output == "-"
    report = sys.stderr if to_stdout else sys.stdout  # stdout carries the audio
    config = config_from(args)
    check_chains(config)
    choice = dataclasses.replace(config.engines(), wake_words=tuple(args.word or ("hey_jarvis",)))
    models = models_from(args)
    wake = None if args.no_wake else models.wake(choice)
    vad, stages = models.vad(choice), Stages(config, models)
    agent = Agent(args.instructions)

    async def go() -> TurnResult:
        try:
            return await converse(
                wake=wake,
                vad=vad,
                stt=stages.stt,
                llm=stages.llm,
                tts=stages.tts,
                audio=audio,
                agent=agent,
                realtime=args.realtime,
            )
        finally:
            await stages.aclose()

    result = asyncio.run(go())
    if args.json:
        print(json.dumps(result.as_dict(), indent=2), file=report)
    if not args.no_wake and result.wake_word is None:
        print(f"no wake word ({', '.join(choice.wake_words)}) in {args.input}: nothing to answer", file=sys.stderr)
        return 1
    if not result.transcript:
        print(f"no speech after the wake word in {args.input}", file=sys.stderr)
        return 1
    if not args.json:
        if result.wake_word:
            print(f"wake: {result.wake_word} (score {result.wake_score:.2f})", file=report)
        print(f"you: {result.transcript}", file=report)
        print(f"assistant: {result.reply}", file=report)
        if served := served_by(result):
            print(f"served by: {served}", file=report)
        if (delay := result.endpoint_to_first_audio) is not None:
            print(
                f"end of speech -> first reply audio: {delay * 1000:.0f} ms after the endpoint "
                f"(+{result.endpointing_delay * 1000:.0f} ms endpointing silence)",
                file=report,
            )
    if result.audio is None or not result.audio.samples_per_channel:
        print("the reply produced no audio", file=sys.stderr)
        return 1
    if to_stdout:
        sys.stdout.buffer.write(wav_bytes(result.audio))
        sys.stdout.buffer.flush()
        return 0
    write_wav(Path(args.output), result.audio)
    if not args.json:
        print(f"wrote {args.output}: {result.audio.seconds:.2f} s", file=report)
    return 0


def served_by(result: TurnResult) -> str:
    """ "stt local, llm openai (after local: timeout 1.00 s), tts local" for the stages behind a fallback."""
    m = result.metrics
    if m is None:
        return ""
    parts = []
    for stage, provider, failed in (
        ("stt", m.stt_provider, m.stt_failed),
        ("llm", m.llm_provider, m.llm_failed),
        ("tts", m.tts_provider, m.tts_failed),
    ):
        if provider:
            tries = ", ".join(f"{a.provider}: {a.outcome} {a.seconds:.2f} s" for a in failed)
            parts.append(f"{stage} {provider}" + (f" (after {tries})" if tries else ""))
    return ", ".join(parts)
