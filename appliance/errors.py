"""The errors the appliance raises on purpose, each with a message a user can act on."""

from __future__ import annotations


class ApplianceError(Exception):
    """Base of every error the appliance raises deliberately."""


class ConfigError(ApplianceError):
    """The configuration or a command-line argument is wrong."""


class ModelError(ApplianceError):
    """A model file is missing, corrupted or of the wrong kind."""


class AudioError(ApplianceError):
    """An audio file cannot be read or holds no usable audio."""


class AudioDeviceError(ApplianceError):
    """A sound device is missing or cannot be opened."""


class ProviderError(ApplianceError):
    """An engine failed while working; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
