"""The ways a provider fails, as a loopback server can be told to."""

from __future__ import annotations

import enum


class Fault(enum.StrEnum):
    NONE = "none"
    """Healthy: answers at once, in full."""
    STATUS_500 = "500"
    """An internal server error before anything is sent."""
    STATUS_429 = "429"
    """Rate limited, with ``Retry-After``."""
    STATUS_401 = "401"
    """The key is refused (not retryable)."""
    REFUSED = "refused"
    """Nothing listens: the connection is refused (the server closes its socket)."""
    HANG_BEFORE_FIRST = "hang_before_first"
    """Accepts the request, sends headers, then nothing: no first token / audio / transcript."""
    HANG_AFTER_FIRST = "hang_after_first"
    """Sends the first piece, then stalls for good."""
    MALFORMED = "malformed"
    """Sends a piece that does not parse (bad SSE JSON, a non-JSON websocket message)."""
    DISCONNECT = "disconnect"
    """Sends the first piece, then drops the connection mid-stream."""
    TRICKLE = "trickle"
    """Answers in full, but slowly: each piece after a pause (``trickle_delay``)."""


RETRY_AFTER = 2
"""Seconds a 429 asks the client to wait."""
