"""Each cloud provider the config names: configured, reachable, and its key accepted, one line each.

The check sends nothing of the user's: a list of models (OpenAI), the websocket handshake (Deepgram), the
account (ElevenLabs).
"""

from __future__ import annotations

import asyncio
import functools
import time

from appliance.config import Config
from appliance.config.cloud import STAGE_PROVIDERS
from appliance.doctor.result import CheckResult, Status, timed
from appliance.errors import APIConnectionError, APIError, APIStatusError, APITimeoutError, ApplianceError
from appliance.providers.chains import check_chains, cloud_engine

CHECK_TIMEOUT = 10.0
"""Seconds one provider may take to answer the check."""


def named_providers(config: Config) -> dict[str, list[str]]:
    """{cloud provider: the stages that name it}, in the order the config names them."""
    named: dict[str, list[str]] = {}
    for stage in STAGE_PROVIDERS:
        for name in config.providers(stage):
            if name != "local":
                named.setdefault(name, []).append(stage)
    return named


def provider_checks(config: Config) -> list[CheckResult]:
    named = named_providers(config)
    if not named:
        return [CheckResult("provider", Status.SKIP, "every stage is local: nothing leaves the device")]
    try:
        check_chains(config)
        problem = None
    except ApplianceError as exc:
        problem = str(exc)
    results = []
    for name, stages in named.items():
        check = functools.partial(_check, config, name, stages, problem)
        results.append(timed(f"provider.{name}", check))
    return results


def _check(config: Config, name: str, stages: list[str], problem: str | None) -> CheckResult:
    check_name = f"provider.{name}"
    section = getattr(config.cloud, name)
    missing = section.missing()
    if missing is not None or (problem is not None and "not installed" in problem):
        fix = problem or f"set cloud.{name}.{missing}"
        return CheckResult(check_name, Status.FAIL, f"not configured (serves {', '.join(stages)})", fix)
    engine = cloud_engine("llm" if "llm" in stages else stages[0], name, config)  # one key, one server

    async def run() -> str:
        try:
            return str(await asyncio.wait_for(engine.check(), CHECK_TIMEOUT))
        finally:
            await engine.aclose()

    url = section.base_url
    start = time.perf_counter()
    try:
        detail = asyncio.run(run())
    except APIStatusError as exc:
        if exc.status in (401, 403):
            return CheckResult(check_name, Status.FAIL, f"key refused at {url}: {exc}", f"check cloud.{name}.api_key")
        return CheckResult(check_name, Status.FAIL, f"answered with an error at {url}: {exc}", "try again later")
    except (APIConnectionError, APITimeoutError, TimeoutError) as exc:
        reason = str(exc) or f"no answer within {CHECK_TIMEOUT:g} s"
        return CheckResult(
            check_name, Status.FAIL, f"not reachable at {url}: {reason}", f"check the network and cloud.{name}.base_url"
        )
    except APIError as exc:
        return CheckResult(
            check_name, Status.FAIL, f"unexpected answer from {url}: {exc}", f"check cloud.{name}.base_url"
        )
    seconds = time.perf_counter() - start
    return CheckResult(
        check_name, Status.OK, f"reachable, key accepted in {seconds:.2f} s ({detail}; serves {', '.join(stages)})"
    )
