"""The HTTP side of the cloud clients: one httpx client per provider, and httpx's failures mapped onto the
``APIError`` family the fallback adapters read.

httpx is the async HTTP client: it streams request and response bodies, has separate connect/read/write/pool
timeouts, and closing a streamed response closes its connection, so a cancelled request stops at the server.
``CloudEngine`` is what every provider's engine shares, whatever its transport (Deepgram's is a websocket).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import numpy as np

from appliance.audio.frame import AudioFrame
from appliance.errors import APIConnectionError, APIError, APIStatusError, APITimeoutError
from appliance.providers.privacy import EgressLedger

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3.0
"""Seconds to set up a connection (a refused one fails at once; this bounds a black-holed address)."""
CLOSE_TIMEOUT = 5.0
"""Seconds ``close()`` waits for a client that lives on another thread's event loop to close."""
READ_TIMEOUT = 30.0
"""Seconds between two pieces of a response before the request fails: the provider's own safety bound. The
fallback adapter's ``attempt_timeout`` (first useful output) is what keeps a turn fast."""
FRAME_SECONDS = 0.05
"""Length of the audio frames streamed speech is handed on in."""

TRANSPORT_ERRORS = (httpx.HTTPError, OSError)
"""What httpx raises when the network or the server fails (``map_error`` turns them into ``APIError``)."""


def malformed(provider: str, what: str) -> APIConnectionError:
    """A response that does not parse: a broken server or proxy, worth trying elsewhere."""
    return APIConnectionError(f"{provider}: malformed response ({what})")


def make_client(base_url: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    limits = httpx.Limits(max_keepalive_connections=4, keepalive_expiry=60.0)
    return httpx.AsyncClient(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout, limits=limits)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (it may be a number or an HTTP date)."""
    return parse_retry_after(response.headers.get("retry-after"))


def parse_retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header's value in seconds."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _detail(body: bytes) -> str:
    """The provider's own error message, if the body is the usual ``{"error": {"message": ...}}``."""
    try:
        doc: Any = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body[:120].decode("utf-8", "replace").strip()
    if isinstance(doc, dict):
        err = doc.get("error", doc.get("detail", doc.get("message", doc.get("err_msg", doc))))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:200]
    return str(doc)[:200]


async def check_status(response: httpx.Response, provider: str) -> None:
    """Raise ``APIStatusError`` for an error status (reading the body of a streamed response first)."""
    if response.status_code < 400:
        return
    body = await response.aread()
    raise status_error(response.status_code, body, retry_after(response), provider)


def status_error(status: int, body: bytes, wait: float | None, provider: str) -> APIStatusError:
    """The ``APIStatusError`` of an error status (of a request, or of a refused websocket handshake); ``wait``
    is its ``Retry-After`` in seconds."""
    hint = {
        401: "; check the API key",
        403: "; check the API key's permissions",
        404: "; check the model name and base_url",
    }
    return APIStatusError(
        f"{provider}: HTTP {status}: {_detail(body)}{hint.get(status, '')}", status=status, retry_after=wait
    )


def map_error(exc: Exception, provider: str) -> APIError:
    """An ``APIError`` for what httpx (or a websocket) raised: all of these are worth trying elsewhere."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return APITimeoutError(f"{provider}: timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError | OSError):
        return APIConnectionError(f"{provider}: cannot connect ({exc or type(exc).__name__})")
    return APIConnectionError(f"{provider}: connection failed ({type(exc).__name__}: {exc})")


class Connection:
    """The httpx client of one engine. Its connections belong to the event loop that opened them, so a client
    serves one loop and is closed as that loop shuts down (``asyncio.run`` finalizes open async generators before
    it closes the loop, and a generator holds the client): ``close()`` after ``asyncio.run`` has nothing left to
    do, and an engine can serve one ``asyncio.run`` after another (each with a new client)."""

    def __init__(self, base_url: str, label: str, headers: dict[str, str]) -> None:
        self.base_url = base_url
        self.label = label
        self._headers = headers
        # made here, not at the first request: building its TLS context takes tens of ms on the event loop
        self._client = make_client(base_url, self._headers)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._guard: AsyncGenerator[None, None] | None = None
        self._closing: asyncio.Task[None] | None = None

    async def client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._loop is loop and not self._client.is_closed:
            return self._client
        if self._loop is not None:  # closed, or used by an earlier loop
            if not self._client.is_closed:
                logger.warning("http client left open on another event loop", extra={"provider": self.label})
            self._client = make_client(self.base_url, self._headers)
        self._loop = loop
        self._guard = self._close_with_loop(self._client)
        await anext(self._guard)
        return self._client

    @staticmethod
    async def _close_with_loop(client: httpx.AsyncClient) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await client.aclose()

    async def aclose(self) -> None:
        if self._loop is not None and self._loop is not asyncio.get_running_loop():
            self.close()
            return
        guard, self._guard = self._guard, None
        if guard is not None:
            await guard.aclose()
        await self._client.aclose()  # does nothing if the guard closed it

    def close(self) -> None:
        """From sync code: in the client's own loop the close is scheduled (``await aclose()`` to wait for it);
        from another thread it is run on that loop."""
        loop = self._loop
        if self._guard is None or loop is None or loop.is_closed():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._closing = loop.create_task(self.aclose(), name=f"{self.label}-close")
        elif loop.is_running():
            asyncio.run_coroutine_threadsafe(self.aclose(), loop).result(CLOSE_TIMEOUT)
        elif running is None:
            loop.run_until_complete(self.aclose())
        else:
            raise RuntimeError(f"{self.label}: close the client with `await aclose()` on its own event loop")


class CloudEngine:
    """What a provider's engines share, whatever their transport: the key's headers, the ledger, request ids,
    and a repr without the key."""

    def __init__(self, base_url: str, api_key: str | None, model: str, ledger: EgressLedger | None, label: str) -> None:
        self.label = label
        self.model = model
        self.base_url = base_url
        self._headers = self.auth_headers(api_key) if api_key else {}
        self._ledger = ledger
        self._requests = 0

    @classmethod
    def auth_headers(cls, api_key: str) -> dict[str, str]:
        """The headers that carry the key (a bearer token, unless the provider wants its own)."""
        return {"Authorization": f"Bearer {api_key}"}

    def _next_id(self) -> str:
        self._requests += 1
        return f"{self.label}_{self._requests}"

    def _record(self, kind: str, nbytes: int) -> None:
        if self._ledger is not None:
            self._ledger.record(self.label, kind, nbytes)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(label={self.label!r}, base_url={self.base_url!r}, model={self.model!r})"


class HTTPEngine(CloudEngine):
    """An engine that speaks HTTP, through one ``Connection``."""

    def __init__(self, base_url: str, api_key: str | None, model: str, ledger: EgressLedger | None, label: str) -> None:
        super().__init__(base_url, api_key, model, ledger, label)
        self._conn = Connection(base_url, label, self._headers)

    async def aclose(self) -> None:
        """Close the HTTP client (its connections)."""
        await self._conn.aclose()

    def close(self) -> None:
        self._conn.close()


async def pcm_frames(response: httpx.Response, rate: int, provider: str) -> AsyncGenerator[AudioFrame, None]:
    """A streamed response's raw PCM (signed 16-bit little-endian mono at ``rate``) as it arrives, in frames of
    at most ``FRAME_SECONDS``; an ``APIConnectionError`` if the body is not audio or holds none."""
    kind = response.headers.get("content-type", "").partition(";")[0].strip()
    if kind and not kind.startswith("audio/") and kind != "application/octet-stream":
        raise malformed(provider, f"the speech is {kind!r}, not audio")
    frame_bytes = round(rate * FRAME_SECONDS) * 2
    pending = bytearray()
    total = 0
    async for piece in response.aiter_bytes():
        pending += piece
        total += len(piece)
        usable = len(pending) - len(pending) % 2  # an odd byte waits for its other half
        for start in range(0, usable, frame_bytes):
            data = np.frombuffer(bytes(pending[start : min(start + frame_bytes, usable)]), dtype="<i2")
            yield AudioFrame(data.astype(np.int16), rate)
        del pending[:usable]
    if total < 2:
        raise APIConnectionError(f"{provider}: the speech response ended before any audio")
    if pending:
        logger.warning("speech ended on half a sample", extra={"provider": provider, "bytes": total})
