"""Joining a LiveKit room: each attempt bounded, failures told apart into one-line ``BridgeError``s, and the
ones that may pass (refused, DNS, 5xx, no answer) retried with backoff for a while.

What the SDK (livekit 1.2.1, Rust FFI underneath) does, as measured against a loopback server:

- ``Room.connect`` raises ``rtc.ConnectError`` whose ``.message`` is all there is to go on, e.g.
  ``engine: signal failure: client error: 401 Unauthorized - invalid API key``. After a failed websocket upgrade
  the SDK asks ``/rtc/validate`` and reports its status and body (``client error`` for 4xx, ``server error`` for
  5xx); a refused port or failed DNS lookup is ``transport connection error: IO error: ...``.
- It retries by itself: up to 4 tries per ``connect`` (3 retries, not settable from Python), back to back; a
  401/403 is not retried. Refused, DNS, 404, 500: about 0.1 s in all.
- A server that never answers costs ``RoomOptions.connect_timeout`` (default 5 s) plus up to 3 s of
  ``/validate`` per try, so 4 x 8 = 32 s by default; one that accepts the websocket but never sends the join
  response, 4 x 5 s. ``connect_timeout`` is set to ``timeout`` here, but the SDK's total still exceeds it.
- Cancelling ``connect`` (a timeout) does NOT stop the attempt in the SDK: it goes on, and if it succeeds
  later a participant is in the room that nobody holds. So an attempt that outlives ``timeout`` is not
  cancelled: the next window waits on the same attempt (no second join in parallel, which with the same
  identity would push the first out of the room), and one still running when ``connect`` gives up is parked:
  it leaves the room at once should it join after all.
- A room whose connect failed is left with nothing native held (no handle; the SDK unsubscribes its queue),
  and may be connected again; each attempt here takes a fresh one from ``room_factory`` all the same, so the
  caller's event handlers never see two attempts on one object.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from collections.abc import Callable

from livekit import rtc

from appliance.errors import BridgeError
from appliance.utils.backoff import Backoff

logger = logging.getLogger(__name__)

BACKOFF_INITIAL = 0.5
BACKOFF_CEILING = 5.0
LEAVE_TIMEOUT = 5.0
"""Seconds a room that was given up on may take to disconnect."""

_STATUS = re.compile(r"(client|server) error: (\d{3})[^-]*-\s*(.*)", re.DOTALL)
_PARKED: set[asyncio.Task[None]] = set()
"""Attempts given up on while the SDK still runs them: held until they end (they cannot be cancelled)."""


async def connect(
    room_factory: Callable[[], rtc.Room],
    url: str,
    token: str,
    *,
    timeout: float,  # noqa: ASYNC109 - per attempt: asyncio.timeout around the call could not tell attempts apart
    retry_for: float,
    options: rtc.RoomOptions | None = None,
) -> rtc.Room:
    """Join the room at ``url`` with ``token`` and return the connected room.

    Each attempt takes a fresh room from ``room_factory`` (attach event handlers there) and gets ``timeout``
    seconds. A bad key, secret or token, a wrong URL or TLS mismatch raises a ``BridgeError`` at once
    (``retryable=False``); a refused connection, DNS failure, 5xx or no answer is retried, waiting 0.5 s
    doubling up to 5 s, until ``retry_for`` seconds have passed, then raises one ``BridgeError``
    (``retryable=True``) naming the URL and the last cause (``retry_for=0``: one attempt, its own error).

    ``options`` default to ``rtc.RoomOptions()``: auto_subscribe on. The agent wants audio only; pass
    ``auto_subscribe=False`` and subscribe audio publications as they come to spare the device video decoding.
    """
    opts = options or rtc.RoomOptions()
    if opts.connect_timeout is None:
        opts = dataclasses.replace(opts, connect_timeout=timeout)
    deadline = time.monotonic() + retry_for
    backoff = Backoff(BACKOFF_INITIAL, BACKOFF_CEILING)
    attempts = 0
    attempt: _Attempt | None = None
    try:
        while True:
            if attempt is None:
                attempt = _Attempt(room_factory(), url, token, opts)
                attempts += 1
            done, _ = await asyncio.wait({attempt.task}, timeout=timeout)
            if not done:
                error = BridgeError(f"no answer from {url} within {timeout:g} s; check the network", retryable=True)
            else:
                room, failure = attempt.room, attempt.task.exception()
                attempt = None
                if failure is None:
                    return room
                await _leave(room)
                if not isinstance(failure, rtc.ConnectError):
                    raise failure
                error = explain(failure.message, url)
                error.__cause__ = failure
                if not error.retryable:
                    raise error
            left = deadline - time.monotonic()
            if left <= 0:
                if retry_for <= 0:
                    raise error
                tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
                raise BridgeError(
                    f"gave up joining the LiveKit room after {retry_for:g} s ({tries}): {error}", retryable=True
                ) from error
            if attempt is not None:  # still running in the SDK: wait on it rather than join twice
                logger.warning("livekit connect has no answer yet, waiting on", extra={"url": url, "attempt": attempts})
                continue
            delay = min(backoff.next(), left)
            logger.warning(
                "livekit connect failed, retrying",
                extra={"url": url, "attempt": attempts, "error": str(error), "retry_in": round(delay, 2)},
            )
            await asyncio.sleep(delay)
    finally:
        if attempt is not None:  # given up on (or cancelled) while the SDK still runs it
            attempt.park()


def explain(message: str, url: str) -> BridgeError:
    """The ``BridgeError`` for a ``ConnectError`` message of the SDK: what went wrong and what to do, one line
    ("problem; fix"); ``retryable`` when trying again may help."""
    found = _STATUS.search(message)
    if found is not None:
        return _status_error(int(found.group(2)), " ".join(found.group(3).split())[:200], url)
    lowered = message.lower()
    if "connection refused" in lowered:
        return BridgeError(
            f"nothing answers at {url} (connection refused); is the LiveKit server running? check livekit.url",
            retryable=True,
        )
    if "lookup address" in lowered or "name or service not known" in lowered or "dns" in lowered:
        return BridgeError(
            f"cannot resolve the host of {url} (DNS lookup failed); check livekit.url and the network", retryable=True
        )
    if any(word in lowered for word in ("invalidcontenttype", "certificate", "tls", "ssl")):
        return BridgeError(
            f"TLS with {url} failed ({_cause(message)}); use ws:// for a server without TLS, or fix its certificate"
        )
    if "joinresponse" in lowered:
        return BridgeError(
            f"{url} took the connection but never sent the room's join response; the server may be overloaded",
            retryable=True,
        )
    if "timed out" in lowered or "timeout" in lowered:
        return BridgeError(f"no answer from {url} (the connection timed out); check the network", retryable=True)
    if "io error" in lowered or "transport" in lowered:
        return BridgeError(f"cannot reach {url} ({_cause(message)}); check the network and livekit.url", retryable=True)
    return BridgeError(f"could not join the LiveKit room at {url} ({_cause(message)})", retryable=True)


def _status_error(status: int, body: str, url: str) -> BridgeError:
    """The server's answer to ``/rtc/validate`` (livekit-server writes the error's text as the body)."""
    lowered = body.lower()
    server = f"the LiveKit server at {url}"
    if status in (401, 403):
        if "api key" in lowered:
            return BridgeError(
                f"{server} refused the API key (LIVEKIT_API_KEY): it has no such key; use a key of this server "
                "(a LIVEKIT_TOKEN must be made with one too)"
            )
        if "signature" in lowered or "cryptographic" in lowered:
            return BridgeError(
                f"{server} refused the token: the API secret (LIVEKIT_API_SECRET) does not match the API key; set "
                "the secret that belongs to LIVEKIT_API_KEY (a LIVEKIT_TOKEN must be signed with it too)"
            )
        if "expired" in lowered:
            return BridgeError(
                f"{server} refused the token: it has expired; make a new LIVEKIT_TOKEN, or if the device mints its "
                "own, check the device clock (timedatectl)"
            )
        if "not valid yet" in lowered or "before issued" in lowered:
            return BridgeError(
                f"{server} refused the token: it is not valid yet (the device clock is ahead of the server's); "
                "set the clock right (timedatectl set-ntp true)"
            )
        if "permission" in lowered:
            return BridgeError(
                f"{server} refused the token: it does not allow joining the room ({body}); make one with the "
                "roomJoin grant for this room"
            )
        return BridgeError(
            f"{server} refused the token ({status}: {body}); check LIVEKIT_API_KEY and LIVEKIT_API_SECRET "
            "(or LIVEKIT_TOKEN)"
        )
    if status == 404 and "room" in lowered:
        return BridgeError(f"{server} has no such room ({body}); create the room first, or check livekit.room")
    if status == 404:
        return BridgeError(
            f"{url} is not a LiveKit server (404 Not Found at /rtc); check livekit.url "
            "(wss://your-project.livekit.cloud, or ws://host:7880 for livekit-server)"
        )
    if status in (408, 429) or status >= 500:
        return BridgeError(f"{server} failed ({status}: {body}); it may be overloaded or restarting", retryable=True)
    return BridgeError(f"{server} refused to let the device join ({status}: {body}); check livekit.room and identity")


def _cause(message: str) -> str:
    """The SDK's message without its layers of prefixes."""
    return message.rsplit("error: ", 1)[-1].strip()[:200]


class _Attempt:
    """One ``Room.connect`` in a task of its own, so that a timeout stops the wait and not the attempt."""

    def __init__(self, room: rtc.Room, url: str, token: str, options: rtc.RoomOptions) -> None:
        self.room = room
        self.abandoned = False
        self.task = asyncio.create_task(self._run(url, token, options), name="livekit-connect")

    async def _run(self, url: str, token: str, options: rtc.RoomOptions) -> None:
        await self.room.connect(url, token, options)
        if self.abandoned:
            logger.warning("livekit room joined after the connect gave up, leaving it", extra={"url": url})
            await _leave(self.room)

    def park(self) -> None:
        """Give the attempt up: hold it until the SDK ends it, and leave the room if it joins after all."""
        self.abandoned = True
        if not self.task.done():
            _PARKED.add(self.task)
            self.task.add_done_callback(_unpark)


def _unpark(task: asyncio.Task[None]) -> None:
    _PARKED.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.debug("abandoned livekit connect ended", extra={"error": str(task.exception())})


async def _leave(room: rtc.Room) -> None:
    """Disconnect (a no-op for a room that never joined), bounded: nothing native stays behind."""
    try:
        async with asyncio.timeout(LEAVE_TIMEOUT):
            await room.disconnect()
    except TimeoutError:
        logger.warning("livekit room did not disconnect in time", extra={"timeout": LEAVE_TIMEOUT})


async def settle(wait: float) -> int:
    """Wait (at most ``wait`` s) for attempts given up on to end in the SDK; how many are still running.
    For shutdown and tests: such an attempt ends by itself within the SDK's own timeouts."""
    pending = set(_PARKED)
    if pending:
        await asyncio.wait(pending, timeout=wait)
    return sum(not task.done() for task in pending)
