"""The ``[livekit]`` section: the optional LiveKit room bridge.

``mode = "agent"`` puts the device's assistant in a room (a person on a phone or browser talks to it from
anywhere); ``"relay"`` puts the device's microphone and speaker in a room (a remote agent or person uses the
device). ``"off"`` (the default): nothing joins any room.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from appliance.errors import ConfigError

MODES = ("off", "agent", "relay")


@dataclass(frozen=True)
class LiveKitConfig:
    mode: str = "off"
    """``off``, ``agent`` (the assistant in a room) or ``relay`` (the device's microphone and speaker in a room)."""
    url: str = ""
    """The LiveKit server, ``wss://project.livekit.cloud`` or ``ws://host:7880`` for ``livekit-server --dev``."""
    room: str = ""
    """The room to join (``run --room NAME`` overrides it)."""
    identity: str = "appliance"
    """The device's identity in the room."""
    participant: str = ""
    """Agent mode: the identity of the user to listen to; empty: the first remote participant."""
    wake_word: bool = False
    """Agent mode: wait for the wake word in the room too (off: every utterance is a turn)."""
    connect_timeout: float = 10.0
    """Seconds one connection attempt may take."""
    reconnect_for: float = 60.0
    """Seconds a dropped connection is retried (with backoff) before the bridge gives up."""
    user_grace: float = 20.0
    """Seconds the session waits for a user who left the room to come back before it ends."""
    publish_rate: int = 48000
    """Sample rate of the published audio track."""
    token_ttl: float = 21600.0
    """Seconds a token minted on the device is valid."""
    api_key: str | None = field(
        default=None,
        repr=False,
        metadata={"secret": True, "env": "LIVEKIT_API_KEY", "credential": "livekit_api_key"},
    )
    """Secret: prefer ``LIVEKIT_API_KEY`` or the systemd credential ``livekit_api_key``."""
    api_secret: str | None = field(
        default=None,
        repr=False,
        metadata={"secret": True, "env": "LIVEKIT_API_SECRET", "credential": "livekit_api_secret"},
    )
    """Secret: prefer ``LIVEKIT_API_SECRET`` or the systemd credential ``livekit_api_secret``."""
    token: str | None = field(
        default=None,
        repr=False,
        metadata={"secret": True, "env": "LIVEKIT_TOKEN", "credential": "livekit_token"},
    )
    """Secret: a token made elsewhere, used instead of minting one from the key and secret."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"livekit.mode = {self.mode!r} is not a mode; use one of {', '.join(MODES)}")
        if self.url:
            scheme, sep, rest = self.url.partition("://")
            if not sep or scheme not in ("ws", "wss", "http", "https") or not rest:
                raise ConfigError(
                    f"livekit.url = {self.url!r} is not a LiveKit URL; use wss://your-project.livekit.cloud or "
                    "ws://host:7880"
                )
        for key, low, high in (
            ("connect_timeout", 1.0, 120.0),
            ("reconnect_for", 0.0, 3600.0),
            ("user_grace", 0.0, 3600.0),
            ("token_ttl", 60.0, 7 * 86400.0),
        ):
            value = getattr(self, key)
            if not low <= value <= high:
                raise ConfigError(f"livekit.{key} = {value} is out of range; use {low:g} to {high:g} seconds")
        if self.publish_rate not in (16000, 24000, 48000):
            raise ConfigError(f"livekit.publish_rate = {self.publish_rate} is not supported; use 16000, 24000 or 48000")
        if not self.identity.strip():
            raise ConfigError('livekit.identity is empty; name the device, e.g. identity = "kitchen"')

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def missing(self, room: str | None = None) -> str | None:
        """What the bridge lacks to join a room, as one line with the fix (None: it can try)."""
        if not self.url:
            return 'livekit.url is not set; set url = "wss://..." under [livekit]'
        if not (room or self.room):
            return "livekit.room is not set; set room under [livekit] or pass run --room NAME"
        if self.token:
            return None
        if not self.api_key:
            return (
                "livekit.api_key is not set; export LIVEKIT_API_KEY=... (or the systemd credential "
                "livekit_api_key), or give a token in LIVEKIT_TOKEN"
            )
        if not self.api_secret:
            return (
                "livekit.api_secret is not set; export LIVEKIT_API_SECRET=... (or the systemd credential "
                "livekit_api_secret), or give a token in LIVEKIT_TOKEN"
            )
        return None
