"""The HTTP side of the cloud clients: one httpx client per provider, and httpx's failures mapped onto the
``APIError`` family the fallback adapters read.

httpx is the async HTTP client: it streams request and response bodies, has separate connect/read/write/pool
timeouts, and closing a streamed response closes its connection, so a cancelled request stops at the server.
"""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx

from appliance.errors import APIConnectionError, APIError, APIStatusError, APITimeoutError

CONNECT_TIMEOUT = 3.0
"""Seconds to set up a connection (a refused one fails at once; this bounds a black-holed address)."""
READ_TIMEOUT = 30.0
"""Seconds between two pieces of a response before the request fails: the provider's own safety bound. The
fallback adapter's ``attempt_timeout`` (first useful output) is what keeps a turn fast."""


def make_client(base_url: str, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
    limits = httpx.Limits(max_keepalive_connections=4, keepalive_expiry=60.0)
    return httpx.AsyncClient(base_url=base_url.rstrip("/") + "/", headers=headers, timeout=timeout, limits=limits)


def retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds (it may be a number or an HTTP date)."""
    value = response.headers.get("retry-after")
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
        err = doc.get("error", doc.get("detail", doc.get("message", doc)))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:200]
    return str(doc)[:200]


async def check_status(response: httpx.Response, provider: str) -> None:
    """Raise ``APIStatusError`` for an error status (reading the body of a streamed response first)."""
    if response.status_code < 400:
        return
    body = await response.aread()
    status = response.status_code
    hint = {
        401: "; check the API key",
        403: "; check the API key's permissions",
        404: "; check the model name and base_url",
    }
    raise APIStatusError(
        f"{provider}: HTTP {status}: {_detail(body)}{hint.get(status, '')}",
        status=status,
        retry_after=retry_after(response),
    )


def map_error(exc: Exception, provider: str) -> APIError:
    """An ``APIError`` for what httpx (or a websocket) raised: all of these are worth trying elsewhere."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return APITimeoutError(f"{provider}: timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError | OSError):
        return APIConnectionError(f"{provider}: cannot connect ({exc or type(exc).__name__})")
    return APIConnectionError(f"{provider}: connection failed ({type(exc).__name__}: {exc})")
