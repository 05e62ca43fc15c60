"""The narrow interface the room logic needs of a LiveKit room (``RoomLink``), and the events it reads.

``livekit_room.LiveKitRoom`` implements it on ``livekit.rtc.Room``; the tests implement it in memory. The logic
above it (``room_agent.py``) never imports the SDK.
"""

from __future__ import annotations

import abc
import asyncio
import enum
from dataclasses import dataclass

from appliance.bridge.audio import AudioSink, FrameStream


class RoomEventKind(enum.StrEnum):
    PARTICIPANT_JOINED = "participant_joined"
    PARTICIPANT_LEFT = "participant_left"
    AUDIO_AVAILABLE = "audio_available"
    """A participant's microphone track is subscribed: ``open_audio(identity)`` hears it."""
    AUDIO_GONE = "audio_gone"
    RECONNECTING = "reconnecting"
    """The SDK lost its connection and is restoring it by itself (tracks come back on their own)."""
    RECONNECTED = "reconnected"
    DISCONNECTED = "disconnected"
    """The connection is gone for good: joining again is the bridge's job."""


@dataclass(frozen=True)
class RoomEvent:
    kind: RoomEventKind
    identity: str = ""
    """The participant it is about (empty for the connection's own events)."""
    reason: str = ""
    """Why, where the server or the SDK says (a disconnect's reason)."""


@dataclass(frozen=True)
class LinkStats:
    """The connection's health, from the SDK's WebRTC statistics where it has them (None: not known)."""

    round_trip: float | None = None
    """Seconds, the selected ICE candidate pair's current round trip."""
    jitter: float | None = None
    """Seconds, of the user's audio as received."""
    packets_lost: int | None = None
    packets_received: int | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "round_trip": self.round_trip,
            "jitter": self.jitter,
            "packets_lost": self.packets_lost,
            "packets_received": self.packets_received,
        }


class RoomLink(abc.ABC):
    """One connection to one room, as the device's participant."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[RoomEvent] = asyncio.Queue()
        """What happens in the room, in order; read by one consumer."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Join the room (raises ``BridgeError``; retried inside within the configured bounds)."""

    @abc.abstractmethod
    async def disconnect(self) -> None: ...

    @abc.abstractmethod
    def participants(self) -> list[str]:
        """The identities of the remote participants there now, in the order they joined."""

    @abc.abstractmethod
    def has_audio(self, identity: str) -> bool:
        """Whether ``identity``'s microphone track is subscribed."""

    @abc.abstractmethod
    def open_audio(self, identity: str) -> FrameStream:
        """``identity``'s microphone as 16 kHz mono frames."""

    @abc.abstractmethod
    def audio_track_id(self, identity: str | None) -> str:
        """The id of ``identity``'s microphone track (None: the device's own published track), for captions."""

    @abc.abstractmethod
    async def publish_audio(self, sample_rate: int) -> AudioSink:
        """Publish the device's voice as a microphone track; what is written to the sink is heard in the room."""

    @abc.abstractmethod
    async def set_attributes(self, attributes: dict[str, str]) -> None:
        """Set the device participant's attributes (``lk.agent.state``)."""

    @abc.abstractmethod
    async def send_text(self, topic: str, text: str, attributes: dict[str, str]) -> None:
        """Send ``text`` to everyone in the room as a text stream on ``topic`` (captions: ``lk.transcription``)."""

    async def stats(self) -> LinkStats:
        return LinkStats()
