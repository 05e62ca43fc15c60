"""The echo canceller put between the microphone and the agent, as the config says."""

from __future__ import annotations

import logging

from appliance.audio.capture import MicrophoneInput
from appliance.audio.playback import SpeakerOutput
from appliance.config import Config
from appliance.echo.gate import ResidualGate
from appliance.echo.input import EchoCancellingInput
from appliance.echo.reference import PlayedAudio
from appliance.echo.webrtc import WebRTCEchoCanceller

logger = logging.getLogger(__name__)


def echo_cancelling(config: Config, mic: MicrophoneInput, speaker: SpeakerOutput) -> EchoCancellingInput | None:
    """The microphone with the speaker's sound taken out, when ``audio.echo_cancellation`` says so (else None);
    the speaker's tap is set to feed it."""
    if not config.echo_cancellation:
        return None
    played = PlayedAudio()
    speaker.tap = played.tap
    # the speaker's stream stays open: every reopened stream would be placed against the microphone by
    # timestamps that jitter by tens of ms, and the canceller would lose the first words of each reply
    # finding the new delay; an open stream keeps one sample-exact line (for about 1 % of a core)
    speaker.rest_after = 0
    canceller = WebRTCEchoCanceller(noise_suppression=config.audio.noise_suppression)
    delay = config.calibration.echo_delay or 0.0
    logger.info("echo cancellation on", extra={"mode": config.audio.echo_cancellation, "delay": delay})
    gate = ResidualGate(config.calibration.echo_level_db)
    return EchoCancellingInput(mic, played, canceller, delay=delay, gate=gate)
