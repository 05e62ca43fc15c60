"""Joining a room with the real SDK against the loopback LiveKit server: each way it fails becomes one clear
``BridgeError``, at once when retrying cannot help, after ``retry_for`` when it might."""

from __future__ import annotations

import asyncio
import datetime
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from livekit import api, rtc

from appliance.bridge.connect import connect, settle
from appliance.errors import BridgeError
from appliance.rig.loopback.faults import Fault
from appliance.rig.loopback.livekit import API_KEY, API_SECRET, LiveKitServer

ROOM = "kitchen"


def mint(key: str = API_KEY, secret: str = API_SECRET, ttl: float = 3600.0) -> str:
    grants = api.VideoGrants(room_join=True, room=ROOM)
    token = api.AccessToken(key, secret).with_identity("appliance").with_grants(grants)
    return token.with_ttl(datetime.timedelta(seconds=ttl)).to_jwt()


@dataclass
class Outcome:
    error: BridgeError
    seconds: float
    rooms: list[rtc.Room] = field(default_factory=list)
    """Every room the factory made: one per attempt."""
    paths: list[str] = field(default_factory=list)
    """What the SDK asked the server."""


def attempt(
    token: str,
    *,
    timeout: float = 5.0,
    retry_for: float = 10.0,
    setup: Callable[[LiveKitServer], Awaitable[None]] | None = None,
) -> Outcome:
    """Connect to a fresh loopback server (``setup`` breaks it first) and return how it failed."""

    async def go() -> Outcome:
        server = LiveKitServer()
        await server.start()
        rooms: list[rtc.Room] = []

        def factory() -> rtc.Room:
            rooms.append(rtc.Room())
            return rooms[-1]

        try:
            if setup is not None:
                await setup(server)
            start = time.monotonic()
            with pytest.raises(BridgeError) as caught:
                await connect(factory, server.ws_url, token, timeout=timeout, retry_for=retry_for)
            seconds = time.monotonic() - start
            assert not any(room.isconnected() for room in rooms)
            assert server.ws_url in str(caught.value)
            return Outcome(caught.value, seconds, rooms, list(server.paths))
        finally:
            await server.set_fault(Fault.REFUSED)  # drops a held request, so an attempt left in the SDK ends
            assert await settle(10.0) == 0, "an abandoned attempt is still running in the SDK"
            await server.stop()

    return asyncio.run(go())


def assert_refused_at_once(outcome: Outcome) -> None:
    """No retry by us (one room) nor by the SDK (one upgrade and its /validate), though retry_for allowed it."""
    assert not outcome.error.retryable
    assert len(outcome.rooms) == 1
    assert outcome.paths == ["/rtc/v1", "/rtc/v1/validate"]
    assert outcome.seconds < 2.0


def test_a_key_the_server_does_not_know_fails_at_once_naming_the_key() -> None:
    outcome = attempt(mint(key="APIunknown"))
    assert_refused_at_once(outcome)
    assert "refused the API key (LIVEKIT_API_KEY)" in str(outcome.error)
    assert "LIVEKIT_API_SECRET" not in str(outcome.error)


def test_a_wrong_secret_fails_at_once_naming_the_secret() -> None:
    outcome = attempt(mint(secret="not-the-secret-not-the-secret-0123456789"))
    assert_refused_at_once(outcome)
    assert "the API secret (LIVEKIT_API_SECRET) does not match" in str(outcome.error)


def test_an_expired_token_fails_at_once_saying_it_expired() -> None:
    outcome = attempt(mint(ttl=-3600))
    assert_refused_at_once(outcome)
    assert "refused the token: it has expired" in str(outcome.error)
    assert "LIVEKIT_TOKEN" in str(outcome.error)


def test_a_url_that_is_not_livekit_fails_at_once() -> None:
    async def not_livekit(server: LiveKitServer) -> None:
        server.not_livekit = True

    outcome = attempt(mint(), setup=not_livekit)
    assert not outcome.error.retryable and len(outcome.rooms) == 1
    assert "is not a LiveKit server (404" in str(outcome.error) and "check livekit.url" in str(outcome.error)
    assert "/rtc" in outcome.paths  # the SDK fell back from /rtc/v1 to /rtc on the 404


def test_a_refused_port_is_retried_with_backoff_until_retry_for(caplog: pytest.LogCaptureFixture) -> None:
    async def closed(server: LiveKitServer) -> None:
        await server.set_fault(Fault.REFUSED)

    token = mint()
    with caplog.at_level(logging.WARNING, logger="appliance.bridge.connect"):
        outcome = attempt(token, retry_for=2.0, setup=closed)
    message = str(outcome.error)
    assert outcome.error.retryable
    assert 2.0 <= outcome.seconds < 4.0
    assert message.startswith("gave up joining the LiveKit room after 2 s (")
    assert "connection refused" in message and "is the LiveKit server running?" in message
    tried = int(re.search(r"\((\d+) attempts\)", message).group(1))  # type: ignore[union-attr]
    assert tried == len(outcome.rooms) >= 3  # 0.5 s, then 1 s, then the rest of the 2 s
    retries = [r for r in caplog.records if r.getMessage() == "livekit connect failed, retrying"]
    assert len(retries) == tried - 1
    assert [r.attempt for r in retries] == list(range(1, tried))  # type: ignore[attr-defined]
    assert all(token not in str(r.__dict__) and token not in message for r in caplog.records)


def test_a_server_error_is_retried_then_named() -> None:
    async def failing(server: LiveKitServer) -> None:
        await server.set_fault(Fault.STATUS_500)

    outcome = attempt(mint(), retry_for=1.0, setup=failing)
    assert outcome.error.retryable and len(outcome.rooms) >= 2
    assert "failed (500: could not create room: internal error)" in str(outcome.error)
    assert outcome.seconds >= 1.0


def test_a_server_that_never_answers_ends_the_attempt_at_timeout() -> None:
    async def silent(server: LiveKitServer) -> None:
        await server.set_fault(Fault.HANG_BEFORE_FIRST)

    outcome = attempt(mint(), timeout=1.0, retry_for=0.0, setup=silent)
    assert outcome.error.retryable and len(outcome.rooms) == 1
    assert re.fullmatch(r"no answer from ws://127\.0\.0\.1:\d+ within 1 s; check the network", str(outcome.error))
    assert 1.0 <= outcome.seconds < 2.0


def test_a_silent_server_is_waited_on_not_joined_twice_until_retry_for() -> None:
    """The SDK cannot cancel a connect: while one runs, the next window waits on it instead of starting another
    (two joins with one identity would push each other out)."""

    async def silent(server: LiveKitServer) -> None:
        await server.set_fault(Fault.HANG_BEFORE_FIRST)

    outcome = attempt(mint(), timeout=1.0, retry_for=1.5, setup=silent)
    assert len(outcome.rooms) == 1 and outcome.paths.count("/rtc/v1") == 1
    assert "gave up joining the LiveKit room after 1.5 s (1 attempt): no answer from" in str(outcome.error)
    assert 2.0 <= outcome.seconds < 3.0
