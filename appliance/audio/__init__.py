"""Audio frames, resampling and audio files."""

from appliance.audio.frame import AudioFrame, merge_frames
from appliance.audio.resample import Resampler, resample
from appliance.audio.wav import read_audio, write_wav

__all__ = ["AudioFrame", "Resampler", "merge_frames", "read_audio", "resample", "write_wav"]
