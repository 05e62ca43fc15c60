"""Wake-word detection."""

from appliance.wake.base import WakeDetected, WakeDetector, WakeStream

__all__ = ["WakeDetected", "WakeDetector", "WakeStream"]
