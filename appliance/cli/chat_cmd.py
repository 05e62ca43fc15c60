"""``appliance-cli chat "TEXT"``: stream the LLM's reply to stdout."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

from appliance.agent import DEFAULT_INSTRUCTIONS
from appliance.cli.common import config_from, models_from
from appliance.errors import ConfigError
from appliance.llm.base import ChatContext, Role
from appliance.providers.chains import build_llm, check_chains
from appliance.providers.privacy import EgressLedger


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("chat", help="stream the LLM's reply to TEXT (through llm.providers; stderr says who answered)")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--system", default=DEFAULT_INSTRUCTIONS, help="the system prompt (instructions)")
    p.add_argument("--model", default=None, help="the local model (default: llm.model of the config)")
    p.add_argument("--metrics", action="store_true", help="print TTFT and tokens/s to stderr")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.text.strip():
        raise ConfigError('TEXT is empty; give the message to send, e.g. appliance-cli chat "What time is it?"')
    config = config_from(args)
    if args.model:
        config = dataclasses.replace(config, llm=dataclasses.replace(config.llm, model=args.model))
    check_chains(config)
    llm = build_llm(config, models_from(args), EgressLedger())
    ctx = ChatContext()
    ctx.add_message(Role.SYSTEM, args.system)
    ctx.add_message(Role.USER, args.text)

    async def go() -> None:
        stream = llm.chat(ctx)
        try:
            async for chunk in stream:
                sys.stdout.write(chunk.delta)
                sys.stdout.flush()
        finally:
            await stream.aclose()
            await llm.aclose()
        print()
        m = stream.metrics
        if m is not None:
            tries = "".join(f", after {a.provider}: {a.outcome} in {a.seconds:.2f} s" for a in m.failed_attempts)
            print(f"answered by {m.provider or config.providers('llm')[0]}{tries}", file=sys.stderr)
        if args.metrics and m:
            print(
                f"ttft {m.ttft:.3f} s, {m.completion_tokens} tokens, {m.tokens_per_second:.1f} tokens/s",
                file=sys.stderr,
            )

    try:
        asyncio.run(go())
    finally:
        llm.close()
    return 0
