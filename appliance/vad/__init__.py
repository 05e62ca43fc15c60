"""Voice activity detection."""

from appliance.vad.base import VADEvent, VADEventType, VADSettings

__all__ = ["VADEvent", "VADEventType", "VADSettings"]
