"""Silero VAD (ONNX) on onnxruntime alone: no torch."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.utils.onnx import onnx_session
from appliance.utils.worker import Worker
from appliance.vad.base import VAD, VADCapabilities, VADSettings, VADStream
from appliance.vad.stream import WindowedVADStream

if TYPE_CHECKING:
    import onnxruntime as ort

WINDOW = 512
"""Samples per inference at 16 kHz (32 ms), as the model expects."""
_CONTEXT = 64


class SileroVAD(VAD):
    """One ONNX session shared by the streams; each stream has its own recurrent state."""

    capabilities = VADCapabilities(SAMPLE_RATE, WINDOW / SAMPLE_RATE)

    def __init__(self, model_path: Path, settings: VADSettings | None = None) -> None:

        self.settings = settings or VADSettings()
        self._session = onnx_session(model_path, 1)
        self._worker = Worker("vad")

    def stream(self, settings: VADSettings | None = None) -> VADStream:
        return WindowedVADStream(self._worker, settings or self.settings, self.new_model(), WINDOW)

    def new_model(self) -> _SileroState:
        return _SileroState(self._session)

    def probabilities(self, frame: AudioFrame) -> np.ndarray:
        """Speech probability of every 32 ms window of a recording (for calibration and doctor)."""
        state = self.new_model()
        n = frame.data.size // WINDOW
        return np.array([state(frame.data[i * WINDOW : (i + 1) * WINDOW]) for i in range(n)], dtype=np.float32)

    def close(self) -> None:
        self._worker.close()


class _SileroState:
    def __init__(self, session: ort.InferenceSession) -> None:
        self._session = session
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _CONTEXT), dtype=np.float32)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)

    def __call__(self, window: np.ndarray) -> float:
        x = (window.astype(np.float32) / 32768.0).reshape(1, -1)
        x = np.concatenate([self._context, x], axis=1)
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = x[:, -_CONTEXT:]
        return float(out[0, 0])
