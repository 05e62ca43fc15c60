"""Pipecat's Smart Turn v3 (ONNX) on onnxruntime: Whisper features of the last 8 s, one probability out."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.errors import AudioError, ModelError
from appliance.turn.base import TurnDetector, TurnSettings
from appliance.turn.features import FRAMES, N_MELS, SAMPLES, log_mel
from appliance.utils.onnx import onnx_session
from appliance.utils.worker import Job, JobCancelled, Worker

if TYPE_CHECKING:
    import onnxruntime as ort

INPUT = "input_features"
TIMEOUT = 2.0
"""Seconds one judgement may take on the worker before it is abandoned (a wedged engine)."""


class SmartTurn(TurnDetector):
    """One ONNX session on its own worker thread; a judgement abandoned mid-run is stopped inside onnxruntime
    (its terminate flag, checked between operators), so the next one does not wait behind it."""

    label = "smart-turn"

    def __init__(
        self, model_path: Path, settings: TurnSettings | None = None, *, threads: int = 1, timeout: float = TIMEOUT
    ) -> None:
        import onnxruntime as ort

        self._ort = ort
        self.settings = settings or TurnSettings()
        self.model_path = model_path
        self._timeout = timeout
        self._session = onnx_session(model_path, threads)
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        if list(inputs.get(INPUT, ()))[1:] != [N_MELS, FRAMES]:
            raise ModelError(
                f"{model_path} is not a Smart Turn v3 model (inputs {inputs}); run `appliance-cli models verify`"
            )
        self._worker = Worker("turn")
        self._closed = False

    async def completion(self, audio: AudioFrame) -> float:
        if self._closed:
            raise RuntimeError("SmartTurn is closed")
        options = self._ort.RunOptions()
        try:
            return await self._worker.run(
                functools.partial(self._completion, audio, options), bound=self._timeout, what="turn detection"
            )
        finally:
            options.terminate = True  # a run still going (cancelled, or over its bound) stops where it is

    def completion_sync(self, audio: AudioFrame) -> float:
        """Blocking :meth:`completion` on the calling thread (tests, doctor, benchmarks)."""
        return self._completion(audio, self._ort.RunOptions(), None)

    def features(self, audio: AudioFrame) -> np.ndarray:
        """The model's input for ``audio``: ``(1, N_MELS, FRAMES)`` float32."""
        if audio.sample_rate != SAMPLE_RATE or audio.num_channels != 1:
            raise ValueError("turn detection takes 16 kHz mono audio; resample first")
        if audio.samples_per_channel == 0:
            raise AudioError("no audio to judge: the utterance is empty")
        tail = audio.data[-SAMPLES:].astype(np.float32) / 32768.0
        return log_mel(tail)[np.newaxis]

    def _completion(self, audio: AudioFrame, options: ort.RunOptions, job: Job | None) -> float:
        features = self.features(audio)
        if job is not None:
            job.check()
        try:
            (out,) = self._session.run(None, {INPUT: features}, options)
        except Exception as exc:  # onnxruntime's own types; a terminated run raises too
            if job is not None and job.cancelled:
                raise JobCancelled from exc
            raise ModelError(
                f"Smart Turn failed on {self.model_path} ({exc}); run `appliance-cli models verify`"
            ) from exc
        probability = float(np.asarray(out).reshape(-1)[0])
        if not math.isfinite(probability) or not 0.0 <= probability <= 1.0:
            raise ModelError(
                f"Smart Turn gave {probability} from {self.model_path}: the model file may be corrupted; "
                "run `appliance-cli models verify`"
            )
        return probability

    def close(self) -> None:
        self._closed = True
        self._worker.close()
