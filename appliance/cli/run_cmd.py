"""``appliance-cli run``: the appliance itself, microphone -> agent -> speaker, in the foreground."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

from appliance.agent import DEFAULT_INSTRUCTIONS, Agent, AgentSession, EventType, SessionOptions
from appliance.agent import events as ev
from appliance.audio.capture import ErrorCallback, MicrophoneInput
from appliance.audio.playback import SpeakerOutput
from appliance.cli.common import models_from
from appliance.engines import EngineChoice
from appliance.errors import AudioDeviceError
from appliance.utils.aio import cancel_and_wait

logger = logging.getLogger(__name__)

STOP_TIMEOUT = 5.0
"""Seconds a stop may take before the process exits regardless."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="the voice appliance: microphone -> agent -> speaker (foreground)")
    p.add_argument("--input-device", default=None, help="microphone by name (or part of it) or index")
    p.add_argument("--output-device", default=None, help="speaker by name (or part of it) or index")
    p.add_argument("--word", action="append", default=None, help="wake word (default hey_jarvis)")
    p.add_argument("--no-wake", action="store_true", help="answer every utterance, without a wake word")
    p.add_argument("--instructions", default=DEFAULT_INSTRUCTIONS)
    o = SessionOptions()
    p.add_argument("--listening-timeout", type=float, default=o.listening_timeout, help="seconds after the wake word")
    p.add_argument("--follow-up", type=float, default=o.follow_up_window, help="seconds to answer without wake word")
    p.add_argument("--min-interruption", type=float, default=o.min_interruption_duration, help="seconds of talk-over")
    p.add_argument("--no-interruptions", action="store_true", help="the user cannot talk over the replies")
    p.add_argument("--no-earcons", action="store_true", help="no tones on wake and timeout")
    p.add_argument("--events", action="store_true", help="print every agent event as a JSON line on stdout")
    p.set_defaults(func=_run, log_level=logging.INFO)


def _run(args: argparse.Namespace) -> int:
    options = SessionOptions(
        allow_interruptions=not args.no_interruptions,
        min_interruption_duration=args.min_interruption,
        require_wake_word=not args.no_wake,
        listening_timeout=args.listening_timeout,
        follow_up_window=args.follow_up,
        earcons=not args.no_earcons,
    )
    choice = EngineChoice(wake_words=tuple(args.word or ("hey_jarvis",)))
    models = models_from(args)
    tts = models.tts(choice)
    session = AgentSession(
        wake=None if args.no_wake else models.wake(choice),
        vad=models.vad(choice),
        stt=models.stt(choice),
        llm=models.llm(choice),
        tts=tts,
        options=options,
    )
    return asyncio.run(_serve(session, tts.sample_rate, args))


def _print_event(event: ev.AgentEvent) -> None:
    print(json.dumps(ev.to_dict(event), default=str), flush=True)


async def _serve(session: AgentSession, voice_rate: int, args: argparse.Namespace) -> int:
    def device_error(source: str) -> ErrorCallback:
        def report(error: AudioDeviceError | None) -> None:
            if error is not None:
                session.report_error(error, source)

        return report

    if args.events:
        for kind in EventType:
            session.on(kind, _print_event)
    mic = MicrophoneInput(args.input_device, on_error=device_error("microphone"))
    speaker = SpeakerOutput(args.output_device, voice_rate, on_error=device_error("speaker"))
    mic.open()
    await speaker.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():  # the second signal: no more waiting
            logger.warning("second signal: exiting now", extra={"signal": signum})
            os._exit(128 + signum)
        logger.info("stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await session.start(Agent(args.instructions), audio_input=mic, audio_output=speaker)
        logger.info("ready", extra={"microphone": mic.device_name, "speaker": speaker.device_name})
        waiter = asyncio.create_task(stop.wait(), name="run-stop")
        ended = asyncio.create_task(session.wait(), name="run-input")
        await asyncio.wait({waiter, ended}, return_when=asyncio.FIRST_COMPLETED)
        await cancel_and_wait(waiter)
        if ended.done() and not stop.is_set():
            print("error: the microphone input ended; see the log above", file=sys.stderr)
            return 1
        return 0
    finally:
        await asyncio.wait_for(_shutdown(session, mic, speaker), STOP_TIMEOUT)


async def _shutdown(session: AgentSession, mic: MicrophoneInput, speaker: SpeakerOutput) -> None:
    await session.aclose()
    await mic.aclose()
    await speaker.aclose()
