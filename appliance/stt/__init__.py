"""Speech to text."""

from appliance.stt.base import SpeechData, SpeechEvent, SpeechEventType

__all__ = ["SpeechData", "SpeechEvent", "SpeechEventType"]
