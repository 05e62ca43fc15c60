"""End-of-turn detection: has the user finished, or only paused?"""

from appliance.turn.base import TurnDetector, TurnSettings

__all__ = ["TurnDetector", "TurnSettings"]
