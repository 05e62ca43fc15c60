"""``appliance-cli chat "TEXT"``: stream the LLM's reply to stdout."""

from __future__ import annotations

import argparse
import asyncio
import sys

from appliance.agent import DEFAULT_INSTRUCTIONS
from appliance.cli.common import models_from
from appliance.engines import DEFAULT_LLM, EngineChoice
from appliance.errors import ConfigError
from appliance.llm.base import ChatContext, Role


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("chat", help="stream the local LLM's reply to TEXT")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--system", default=DEFAULT_INSTRUCTIONS, help="the system prompt (instructions)")
    p.add_argument("--model", default=DEFAULT_LLM)
    p.add_argument("--metrics", action="store_true", help="print TTFT and tokens/s to stderr")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if not args.text.strip():
        raise ConfigError('TEXT is empty; give the message to send, e.g. appliance-cli chat "What time is it?"')
    llm = models_from(args).llm(EngineChoice(llm=args.model))
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
        print()
        if args.metrics and stream.metrics:
            m = stream.metrics
            print(
                f"ttft {m.ttft:.3f} s, {m.completion_tokens} tokens, {m.tokens_per_second:.1f} tokens/s",
                file=sys.stderr,
            )

    try:
        asyncio.run(go())
    finally:
        llm.close()
    return 0
