"""The errors the appliance raises on purpose, each with a message a user can act on.

Stage failures form one family that fallback logic reads without parsing messages: ``APIError`` carries
``retryable`` (would trying again, or trying the next provider, help?), and its subclasses say what kind of
failure it was. Local engines raise them too: a model that does not load is not retryable, a worker that
timed out is.
"""

from __future__ import annotations


class ApplianceError(Exception):
    """Base of every error the appliance raises deliberately."""


class ConfigError(ApplianceError):
    """The configuration or a command-line argument is wrong."""


class AudioError(ApplianceError):
    """An audio file cannot be read or holds no usable audio."""


class AudioDeviceError(ApplianceError):
    """A sound device is missing or cannot be opened."""


class APIError(ApplianceError):
    """A stage (local engine or remote provider) failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class APIConnectionError(APIError):
    """The engine or provider could not be reached (a dead worker, a refused connection); worth a retry."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message, retryable=retryable)


class APITimeoutError(APIConnectionError):
    """The engine or provider took longer than its bound; worth a retry."""


class APIStatusError(APIError):
    """A provider answered with an error status; retryable for 408, 429 and 5xx."""

    def __init__(
        self, message: str, *, status: int, retryable: bool | None = None, retry_after: float | None = None
    ) -> None:
        if retryable is None:
            retryable = status in (408, 409, 429) or status >= 500
        super().__init__(message, retryable=retryable)
        self.status = status
        self.retry_after = retry_after
        """Seconds the provider asked us to wait (``Retry-After``), if it said."""


class ModelError(APIError):
    """A model file is missing, corrupted or of the wrong kind (loading it again will not help)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class BridgeError(ApplianceError):
    """The LiveKit room could not be joined, or was lost; ``retryable`` says whether trying again may help
    (a refused connection, a timeout) or not (a bad key, an expired token, a wrong URL)."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
