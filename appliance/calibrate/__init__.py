"""Tuning the device to its room: noise floor, the user's voice, the speaker's echo, and the thresholds from them."""

from appliance.calibrate.flow import Calibrator, Echo, Options, Result
from appliance.calibrate.thresholds import Choice

__all__ = ["Calibrator", "Choice", "Echo", "Options", "Result"]
