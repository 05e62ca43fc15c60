"""``appliance-cli run``: the appliance itself, microphone -> agent -> speaker (the service runs this)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any

from appliance import logs
from appliance.cli.common import config_from, models_from
from appliance.config import Config, check_models
from appliance.service.daemon import run_daemon


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="the voice appliance: microphone -> agent -> speaker (foreground)")
    p.add_argument("--input-device", default=None, help="microphone by name (or part of it) or index [audio]")
    p.add_argument("--output-device", default=None, help="speaker by name (or part of it) or index [audio]")
    p.add_argument("--word", action="append", default=None, help="wake word, repeatable [wake.words]")
    p.add_argument("--no-wake", action="store_true", help="answer every utterance, without a wake word")
    p.add_argument("--instructions", default=None, help="the system prompt [agent.instructions]")
    p.add_argument("--listening-timeout", type=float, default=None, help="seconds after the wake word")
    p.add_argument("--follow-up", type=float, default=None, help="seconds to answer without the wake word")
    p.add_argument("--min-interruption", type=float, default=None, help="seconds of talk-over that pause a reply")
    p.add_argument("--no-interruptions", action="store_true", help="the user cannot talk over the replies")
    p.add_argument("--no-earcons", action="store_true", help="no tones on wake and timeout")
    p.add_argument("--no-history", action="store_true", help="do not keep the conversation across restarts")
    p.add_argument(
        "--room",
        default=None,
        help="join this LiveKit room as the assistant (agent mode unless [livekit] mode says relay) [livekit.room]",
    )
    p.add_argument("--events", action="store_true", help="print every agent event as a JSON line on stdout")
    p.set_defaults(func=_run)


def with_flags(config: Config, args: argparse.Namespace) -> Config:
    """The config with the command line's explicit flags on top (a flag not given changes nothing)."""
    audio: dict[str, Any] = {}
    if args.input_device is not None:
        audio["input_device"] = args.input_device
    if args.output_device is not None:
        audio["output_device"] = args.output_device
    agent: dict[str, Any] = {}
    for flag, key in (
        ("instructions", "instructions"),
        ("listening_timeout", "listening_timeout"),
        ("follow_up", "follow_up_window"),
        ("min_interruption", "min_interruption_duration"),
    ):
        if getattr(args, flag) is not None:
            agent[key] = getattr(args, flag)
    for flag, key in (
        ("no_wake", "require_wake_word"),
        ("no_interruptions", "allow_interruptions"),
        ("no_earcons", "earcons"),
        ("no_history", "keep_history"),
    ):
        if getattr(args, flag):
            agent[key] = False
    wake: dict[str, Any] = {"words": tuple(args.word)} if args.word else {}
    livekit: dict[str, Any] = {}
    if getattr(args, "room", None):
        livekit["room"] = args.room
        if config.livekit.mode == "off":
            livekit["mode"] = "agent"
    return dataclasses.replace(
        config,
        livekit=dataclasses.replace(config.livekit, **livekit),
        audio=dataclasses.replace(config.audio, **audio),
        agent=dataclasses.replace(config.agent, **agent),
        wake=dataclasses.replace(config.wake, **wake),
    )


def _run(args: argparse.Namespace) -> int:
    config = with_flags(config_from(args), args)
    level = getattr(logging, config.log.level.upper())
    from appliance.audio.native_log import quiet_native_audio_logs

    quiet_native_audio_logs()  # PortAudio's and ALSA's own lines (a score per outage) to the debug log
    logs.setup(max(logging.DEBUG, level - 10 * min(args.verbose, 2)), config.log.format)
    models = models_from(args)
    check_models(config, models)  # every model named is there and intact, before anything loads
    return run_daemon(config, models, print_events=args.events)
