"""``RoomLink`` on the LiveKit SDK's ``rtc.Room``: the one module of the room logic that touches the SDK.

Audio only: tracks are not auto-subscribed; each remote microphone (an audio publication) is subscribed as it
is published, so a participant's camera or screen never costs the device a decoder.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from livekit import rtc

from appliance.bridge.audio import AudioSink
from appliance.bridge.connect import connect
from appliance.bridge.livekit_audio import LiveKitSink, TrackStream
from appliance.bridge.room import LinkStats, RoomEvent, RoomEventKind, RoomLink
from appliance.bridge.token import room_token
from appliance.config.livekit import LiveKitConfig
from appliance.errors import BridgeError

logger = logging.getLogger(__name__)

VOICE_TRACK = "appliance-voice"
LEAVE_TIMEOUT = 5.0
"""Seconds leaving the room may take (the server may be gone)."""


class _SdkToDebug(logging.Filter):
    """The SDK logs a WARNING or ERROR for each of its own tries inside one join (four per refused connect);
    ``connect.py`` says what happened in one line with the fix, so the SDK's lines go to the debug log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.CRITICAL:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger("appliance").isEnabledFor(logging.DEBUG)


_SDK_LOG = logging.getLogger("livekit")
if not any(isinstance(f, _SdkToDebug) for f in _SDK_LOG.filters):
    _SDK_LOG.addFilter(_SdkToDebug())


class LiveKitRoom(RoomLink):
    """One room joined as ``config.identity``; ``connect()`` again after a ``DISCONNECTED`` joins anew."""

    def __init__(self, config: LiveKitConfig, room: str | None = None) -> None:
        super().__init__()
        self.config = config
        self.room_name = room or config.room
        self._room: rtc.Room | None = None
        self._sink: LiveKitSink | None = None
        self._voice_sid = ""
        self._tracks: dict[str, rtc.Track] = {}
        self._closing = False

    async def connect(self) -> None:
        await self._drop_room()
        token = room_token(self.config, self.room_name)
        self._closing = False
        options = rtc.RoomOptions(auto_subscribe=False)
        self._room = await connect(
            self._rtc_room,
            self.config.url,
            token,
            timeout=self.config.connect_timeout,
            retry_for=self.config.reconnect_for,
            options=options,
        )
        for participant in self._room.remote_participants.values():
            self._put(RoomEventKind.PARTICIPANT_JOINED, participant.identity)
            for publication in participant.track_publications.values():
                self._subscribe_audio(publication)

    def _rtc_room(self) -> rtc.Room:
        """A fresh ``rtc.Room`` with the handlers that turn its events into ``RoomEvent``s."""
        room = rtc.Room()

        def _joined(participant: rtc.RemoteParticipant) -> None:
            self._put(RoomEventKind.PARTICIPANT_JOINED, participant.identity)

        def _left(participant: rtc.RemoteParticipant) -> None:
            self._tracks.pop(participant.identity, None)
            self._put(RoomEventKind.PARTICIPANT_LEFT, participant.identity)

        def _published(publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
            self._subscribe_audio(publication)

        def _subscribed(
            track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
        ) -> None:
            if track.kind == rtc.TrackKind.KIND_AUDIO:
                self._tracks[participant.identity] = track
                self._put(RoomEventKind.AUDIO_AVAILABLE, participant.identity)

        def _unsubscribed(
            track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
        ) -> None:
            if self._tracks.get(participant.identity) is track:
                del self._tracks[participant.identity]
                self._put(RoomEventKind.AUDIO_GONE, participant.identity)

        def _reconnecting() -> None:
            self._put(RoomEventKind.RECONNECTING)

        def _reconnected() -> None:
            self._put(RoomEventKind.RECONNECTED)

        def _disconnected(reason: Any = None) -> None:
            if not self._closing:
                self._tracks.clear()
                self._put(RoomEventKind.DISCONNECTED, reason=str(reason))

        room.on("participant_connected", _joined)
        room.on("participant_disconnected", _left)
        room.on("track_published", _published)
        room.on("track_subscribed", _subscribed)
        room.on("track_unsubscribed", _unsubscribed)
        room.on("reconnecting", _reconnecting)
        room.on("reconnected", _reconnected)
        room.on("disconnected", _disconnected)
        return room

    def _subscribe_audio(self, publication: rtc.TrackPublication) -> None:
        if publication.kind == rtc.TrackKind.KIND_AUDIO and isinstance(publication, rtc.RemoteTrackPublication):
            publication.set_subscribed(True)

    def _put(self, kind: RoomEventKind, identity: str = "", reason: str = "") -> None:
        self.events.put_nowait(RoomEvent(kind, identity, reason))

    def _connected(self) -> rtc.Room:
        if self._room is None:
            raise BridgeError("not in the room", retryable=True)
        return self._room

    async def _drop_room(self) -> None:
        room, self._room = self._room, None
        if self._sink is not None:
            await self._sink.aclose()
            self._sink = None
        if room is not None:
            self._closing = True
            try:
                async with asyncio.timeout(LEAVE_TIMEOUT):
                    await room.disconnect()
            except TimeoutError:
                logger.warning("room did not confirm the leave", extra={"seconds": LEAVE_TIMEOUT})

    async def disconnect(self) -> None:
        await self._drop_room()

    def participants(self) -> list[str]:
        if self._room is None:
            return []
        return [p.identity for p in self._room.remote_participants.values()]

    def has_audio(self, identity: str) -> bool:
        return identity in self._tracks

    def open_audio(self, identity: str) -> TrackStream:
        track = self._tracks.get(identity)
        if track is None:
            raise BridgeError(f"participant {identity!r} has no microphone track in the room", retryable=True)
        return TrackStream(track)

    def audio_track_id(self, identity: str | None) -> str:
        if identity is None:
            return self._voice_sid
        track = self._tracks.get(identity)
        return track.sid if track is not None else ""

    async def publish_audio(self, sample_rate: int) -> AudioSink:
        room = self._connected()
        if self._sink is not None:
            await self._sink.aclose()
        self._sink = LiveKitSink(sample_rate)
        options = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                publication = await room.local_participant.publish_track(self._sink.track(VOICE_TRACK), options)
        except TimeoutError as exc:
            raise BridgeError(
                f"the room did not take the device's voice track within {self.config.connect_timeout:g} s; "
                "check the network (WebRTC's UDP ports to the LiveKit server)",
                retryable=True,
            ) from exc
        self._voice_sid = publication.sid
        return self._sink

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        await self._connected().local_participant.set_attributes(attributes)

    async def send_text(self, topic: str, text: str, attributes: dict[str, str]) -> None:
        await self._connected().local_participant.send_text(text, topic=topic, attributes=attributes)

    async def stats(self) -> LinkStats:
        stats = await self._connected().get_rtc_stats()
        return link_stats([*stats.publisher_stats, *stats.subscriber_stats])


def link_stats(entries: Iterable[Any]) -> LinkStats:
    """The nominated candidate pair's round trip, and the received audio's jitter (the worst stream) and losses,
    from the SDK's WebRTC statistics (``proto_stats.RtcStats`` entries)."""
    round_trip = jitter = None
    lost = received = None
    for entry in entries:
        kind = entry.WhichOneof("stats")
        if kind == "candidate_pair" and entry.candidate_pair.candidate_pair.nominated:
            round_trip = entry.candidate_pair.candidate_pair.current_round_trip_time
        elif kind == "inbound_rtp" and entry.inbound_rtp.stream.kind == "audio":
            rtp = entry.inbound_rtp.received
            jitter = max(jitter or 0.0, rtp.jitter)
            lost = (lost or 0) + rtp.packets_lost
            received = (received or 0) + rtp.packets_received
    return LinkStats(round_trip, jitter, lost, received)
