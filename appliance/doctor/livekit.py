"""The LiveKit room bridge, when ``[livekit]`` turns it on: its settings, its token, and one join of the room,
one line each.

The join is one attempt (no retries) within ``connect_timeout``, then the check leaves. With a token minted on
the device it joins as ``<identity>-doctor``, so a running service in the room is not pushed out (LiveKit lets
one identity in once); a pre-made token fixes the identity, so then the join is skipped while the service runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import time

from appliance.bridge.token import INSTALL_FIX, room_token, token_claims
from appliance.config import Config
from appliance.config.livekit import LiveKitConfig
from appliance.doctor.result import CheckResult, Status, timed
from appliance.errors import ApplianceError, BridgeError

DOCTOR_SUFFIX = "-doctor"
"""Added to ``identity`` for the check's own join."""
LEAVE_TIMEOUT = 5.0
"""Seconds the check's room may take to disconnect."""


def livekit_checks(config: Config, *, service_active: bool = False) -> list[CheckResult]:
    lk = config.livekit
    if not lk.enabled:
        return [CheckResult("livekit", Status.SKIP, "off: the device joins no LiveKit room")]
    settings = timed("livekit.settings", lambda: _settings(lk))
    if settings.status is Status.FAIL:
        not_checked = "not checked: the settings are incomplete"
        return [
            settings,
            CheckResult("livekit.token", Status.SKIP, not_checked),
            CheckResult("livekit.connect", Status.SKIP, not_checked),
        ]
    token = timed("livekit.token", lambda: _token(lk))
    if token.status is Status.FAIL:
        return [settings, token, CheckResult("livekit.connect", Status.SKIP, "not checked: no usable token")]
    if lk.token and service_active:
        return [
            settings,
            token,
            CheckResult(
                "livekit.connect",
                Status.SKIP,
                "not checked: the service may be in the room as the token's identity, and a second join would push "
                "it out",
                "stop the service to check the join (sudo systemctl stop appliance)",
            ),
        ]
    return [settings, token, timed("livekit.connect", lambda: _connect(lk))]


def _settings(lk: LiveKitConfig) -> CheckResult:
    name = "livekit.settings"
    problem = lk.missing()
    if problem is not None:
        detail, _, fix = problem.partition("; ")
        return CheckResult(name, Status.FAIL, f"mode {lk.mode}: {detail}", fix)
    if importlib.util.find_spec("livekit.rtc") is None or importlib.util.find_spec("livekit.api") is None:
        return CheckResult(name, Status.FAIL, f"mode {lk.mode}: the LiveKit SDK is not installed", INSTALL_FIX)
    source = "LIVEKIT_TOKEN" if lk.token else "minted on the device"
    return CheckResult(
        name, Status.OK, f"mode {lk.mode}: room {lk.room!r} at {lk.url} as {lk.identity!r}, token {source}"
    )


def _token(lk: LiveKitConfig) -> CheckResult:
    name = "livekit.token"
    try:
        token = room_token(lk)
    except BridgeError as exc:
        detail, _, fix = str(exc).partition("; ")
        return CheckResult(name, Status.FAIL, detail, fix)
    claims = token_claims(token)
    video = claims.get("video")
    room = video.get("room", "") if isinstance(video, dict) else ""
    exp = claims.get("exp")
    valid = f", valid {_span(exp - time.time())}" if isinstance(exp, int | float) else ", with no expiry"
    how = "LIVEKIT_TOKEN" if lk.token else "minted"
    detail = f"{how}: {claims.get('sub', '')!r} may join room {room!r}{valid} (the server checks the signature)"
    return CheckResult(name, Status.OK, detail)


def _connect(lk: LiveKitConfig) -> CheckResult:
    name = "livekit.connect"
    own = lk if lk.token else dataclasses.replace(lk, identity=f"{lk.identity}{DOCTOR_SUFFIX}")
    token = room_token(own)
    start = time.perf_counter()
    try:
        asyncio.run(_join_and_leave(own, token))
    except BridgeError as exc:
        detail, _, fix = str(exc).partition("; ")
        return CheckResult(name, Status.FAIL, detail, fix or "check livekit.url and the network")
    except ApplianceError as exc:
        return CheckResult(name, Status.FAIL, str(exc), "check livekit.url")
    seconds = time.perf_counter() - start
    who = "the token's identity" if lk.token else repr(own.identity)
    return CheckResult(name, Status.OK, f"joined room {lk.room!r} at {lk.url} as {who} in {seconds:.2f} s, then left")


async def _join_and_leave(lk: LiveKitConfig, token: str) -> None:
    from livekit import rtc

    from appliance.bridge.connect import connect

    room = await connect(rtc.Room, lk.url, token, timeout=lk.connect_timeout, retry_for=0.0)
    async with asyncio.timeout(LEAVE_TIMEOUT):
        await room.disconnect()


def _span(seconds: float) -> str:
    """``1 h 59 min``: whole minutes, rounded down (a token is not valid for a minute it does not last)."""
    minutes = int(seconds // 60)
    if minutes >= 2 * 24 * 60:
        return f"{minutes // (24 * 60)} days"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
