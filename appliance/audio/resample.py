"""Sample-rate conversion with libsoxr (band-limited, not linear interpolation).

libsoxr adds dither when it writes 16-bit samples: silence in comes out as noise of a bit or two. A speaker
that plays silence must read as silence (the echo gate tells the speaker's pauses from its words by it), so
the conversion runs in float and is rounded here, without dither.
"""

from __future__ import annotations

import numpy as np
import soxr

from appliance.audio.frame import AudioFrame, to_int16


def resample(frame: AudioFrame, rate: int, *, mono: bool = True) -> AudioFrame:
    """Convert a whole frame to ``rate`` (and to mono unless ``mono`` is false)."""
    data = frame.data.reshape(-1, frame.num_channels)
    channels = frame.num_channels
    if mono and channels > 1:
        data = to_int16(data.astype(np.float32).mean(axis=1, keepdims=True))
        channels = 1
    if frame.sample_rate != rate and data.shape[0]:
        data = to_int16(soxr.resample(data.astype(np.float32), frame.sample_rate, rate, quality="HQ"))
    return AudioFrame(np.ascontiguousarray(data, dtype=np.int16).reshape(-1), rate, channels)


class Resampler:
    """Streaming conversion for audio that arrives in blocks (microphone, synthesizer)."""

    def __init__(self, in_rate: int, out_rate: int, num_channels: int = 1) -> None:
        self.in_rate, self.out_rate, self.num_channels = in_rate, out_rate, num_channels
        self._stream = (
            soxr.ResampleStream(in_rate, out_rate, num_channels, dtype="float32", quality="HQ")
            if in_rate != out_rate
            else None
        )

    def push(self, frame: AudioFrame) -> AudioFrame:
        if frame.sample_rate != self.in_rate or frame.num_channels != self.num_channels:
            raise ValueError("Resampler.push: frame rate or channels differ from the resampler's")
        if self._stream is None:
            return frame
        out = to_int16(self._stream.resample_chunk(frame.data.reshape(-1, self.num_channels).astype(np.float32)))
        return AudioFrame(np.ascontiguousarray(out).reshape(-1), self.out_rate, self.num_channels)
