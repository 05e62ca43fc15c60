"""Text to speech."""

from appliance.tts.base import SynthesizedAudio, TTSMetrics
from appliance.tts.sentences import SentenceStream

__all__ = ["SentenceStream", "SynthesizedAudio", "TTSMetrics"]
