"""The room's health from the SDK's own WebRTC statistics messages (the protobufs ``Room.get_rtc_stats`` returns)."""

from __future__ import annotations

from livekit.rtc._proto import stats_pb2

from appliance.bridge.livekit_room import link_stats
from appliance.bridge.room import LinkStats


def pair(rtt: float, nominated: bool) -> stats_pb2.RtcStats:
    entry = stats_pb2.RtcStats()
    entry.candidate_pair.candidate_pair.current_round_trip_time = rtt
    entry.candidate_pair.candidate_pair.nominated = nominated
    return entry


def inbound(kind: str, jitter: float, lost: int, received: int) -> stats_pb2.RtcStats:
    entry = stats_pb2.RtcStats()
    entry.inbound_rtp.stream.kind = kind
    entry.inbound_rtp.received.jitter = jitter
    entry.inbound_rtp.received.packets_lost = lost
    entry.inbound_rtp.received.packets_received = received
    return entry


def test_the_nominated_pair_and_the_audio_streams_make_the_figures() -> None:
    entries = [
        pair(0.250, nominated=False),  # a candidate pair that was tried and not chosen
        pair(0.032, nominated=True),
        inbound("audio", 0.004, 3, 900),
        inbound("audio", 0.011, 1, 450),
        inbound("video", 0.090, 70, 100),  # a camera's stream is not the user's voice
    ]
    assert link_stats(entries) == LinkStats(round_trip=0.032, jitter=0.011, packets_lost=4, packets_received=1350)


def test_nothing_known_is_none_not_zero() -> None:
    assert link_stats([]) == LinkStats()
