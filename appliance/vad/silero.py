"""Silero VAD (ONNX) on onnxruntime alone: no torch."""

from __future__ import annotations

import collections
import concurrent.futures
import math
from pathlib import Path

import numpy as np
import onnxruntime as ort

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.utils.aio import EventStream
from appliance.vad.base import VADEvent, VADEventType, VADSettings

WINDOW = 512
"""Samples per inference at 16 kHz (32 ms), as the model expects."""
_CONTEXT = 64
KEPT_SILENCE = 0.2
"""Seconds of the closing silence kept at the end of an utterance: enough for the last word."""


class SileroVAD:
    """One ONNX session shared by the streams; each stream has its own recurrent state."""

    def __init__(self, model_path: Path, settings: VADSettings | None = None) -> None:
        self.settings = settings or VADSettings()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self._session = ort.InferenceSession(str(model_path), sess_options=opts, providers=["CPUExecutionProvider"])
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="vad")

    def stream(self, settings: VADSettings | None = None) -> EventStream[AudioFrame, VADEvent]:
        """A stream with its own state; ``settings`` overrides the VAD's own for this stream."""
        return _SileroStream(self, self._executor, settings or self.settings)

    def new_model(self) -> _SileroState:
        return _SileroState(self._session)

    def probabilities(self, frame: AudioFrame) -> np.ndarray:
        """Speech probability of every 32 ms window of a recording (for calibration and tests)."""
        state = self.new_model()
        n = frame.data.size // WINDOW
        return np.array([state(frame.data[i * WINDOW : (i + 1) * WINDOW]) for i in range(n)], dtype=np.float32)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)


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


class _SileroStream(EventStream[AudioFrame, VADEvent]):
    def __init__(self, vad: SileroVAD, executor: concurrent.futures.Executor, settings: VADSettings) -> None:
        s = settings
        self._s = s
        self._model = vad.new_model()
        self._pending = np.zeros(0, dtype=np.int16)
        self._pad: collections.deque[np.ndarray] = collections.deque(
            # the padding, plus the windows that confirm the speech before START fires
            maxlen=1 + math.ceil((s.prefix_padding + s.min_speech_duration) * SAMPLE_RATE / WINDOW)
        )
        self._speech: list[np.ndarray] = []
        self._speaking = False
        self._speech_run = 0.0
        self._speech_duration = 0.0
        self._silence_duration = 0.0
        self._speech_start = 0.0
        self._pause_sent = False
        self._windows = 0
        super().__init__(executor, name="vad-stream")

    def _process(self, items: list[AudioFrame], flush: bool) -> list[VADEvent]:
        for frame in items:
            if frame.sample_rate != SAMPLE_RATE or frame.num_channels != 1:
                raise ValueError("vad stream takes 16 kHz mono frames; resample first")
        if items:
            self._pending = np.concatenate([self._pending, *(f.data for f in items)])
        events: list[VADEvent] = []
        n = self._pending.size // WINDOW
        for i in range(n):
            events.extend(self._window(self._pending[i * WINDOW : (i + 1) * WINDOW]))
        self._pending = self._pending[n * WINDOW :]
        return events

    def _finish(self) -> list[VADEvent]:
        # The input ended inside an utterance: close it, so no speech is lost.
        return [self._end(0.0)] if self._speaking else []

    def _window(self, window: np.ndarray) -> list[VADEvent]:
        s, dt = self._s, WINDOW / SAMPLE_RATE
        p = self._model(window)
        self._windows += 1
        now = self._windows * dt
        events = [self._event(VADEventType.INFERENCE_DONE, p)]
        if not self._speaking:
            self._pad.append(window)
            self._speech_run = self._speech_run + dt if p >= s.threshold else 0.0
            if self._speech_run >= s.min_speech_duration:
                self._speaking = True
                self._speech_start = now - self._speech_run
                self._speech = list(self._pad)
                self._speech_duration = self._speech_run
                self._silence_duration = 0.0
                events.append(self._event(VADEventType.START_OF_SPEECH, p))
            return events
        self._speech.append(window)
        if p < s.deactivation_threshold:
            self._silence_duration += dt
        else:
            self._speech_duration += self._silence_duration + dt
            self._silence_duration = 0.0
            self._pause_sent = False
        too_long = self._speech_duration + self._silence_duration >= s.max_speech_duration
        if self._silence_duration >= s.min_silence_duration or too_long:
            events.append(self._end(p))
        elif self._silence_duration >= KEPT_SILENCE and not self._pause_sent:
            self._pause_sent = True
            events.append(self._event(VADEventType.SPEECH_PAUSED, p, with_audio=True))
        return events

    def _end(self, p: float) -> VADEvent:
        event = self._event(VADEventType.END_OF_SPEECH, p, with_audio=True)
        self._speaking = False
        self._speech = []
        self._speech_run = 0.0
        self._pause_sent = False
        self._pad.clear()
        return event

    def _event(self, kind: VADEventType, p: float, *, with_audio: bool = False) -> VADEvent:
        frames: tuple[AudioFrame, ...] = ()
        frames_start = 0.0
        if with_audio:
            # the utterance keeps KEPT_SILENCE of its closing silence, no more
            drop = int(max(0.0, self._silence_duration - KEPT_SILENCE) * SAMPLE_RATE / WINDOW)
            kept = self._speech[: len(self._speech) - drop] if drop else self._speech
            audio = np.concatenate(kept) if kept else np.zeros(0, np.int16)
            frames = (AudioFrame(audio, SAMPLE_RATE),)
            frames_start = ((self._windows - drop) * WINDOW - audio.size) / SAMPLE_RATE
        return VADEvent(
            kind,
            self._windows * WINDOW / SAMPLE_RATE,
            p,
            self._speech_duration,
            self._silence_duration,
            self._speech_start,
            frames,
            frames_start,
        )
