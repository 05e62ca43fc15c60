"""Wake words with openWakeWord models on the TFLite runtime shipped by ``pyopen-wakeword``."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.errors import ConfigError, ModelError
from appliance.utils.aio import WorkerStream
from appliance.utils.worker import Job, Worker
from appliance.wake.base import WakeCapabilities, WakeDetected, WakeDetector, WakeScorer, WakeSettings, WakeStream

if TYPE_CHECKING:
    from pyopen_wakeword import OpenWakeWord, OpenWakeWordFeatures

logger = logging.getLogger(__name__)

CHUNK_SAMPLES = 1280
"""openWakeWord scores one 80 ms chunk at a time."""
DETECT_TIMEOUT = 10.0
"""Seconds one batch of scoring may take before the stream fails."""


class OpenWakeWordDetector(WakeDetector):
    """Loads the feature models once; each stream gets its own model state."""

    capabilities = WakeCapabilities(SAMPLE_RATE, CHUNK_SAMPLES / SAMPLE_RATE)

    def __init__(
        self, melspectrogram: Path, embedding: Path, wake_models: dict[str, Path], settings: WakeSettings | None = None
    ) -> None:
        if not wake_models:
            raise ConfigError("no wake word configured; name at least one (e.g. hey_jarvis)")
        self.settings = settings or WakeSettings()
        self._paths = (melspectrogram, embedding, dict(wake_models))
        self._worker = Worker("wake")
        # Load every model now: a bad file fails here, at start, and the first stream starts warm.
        try:
            self._spare: tuple[OpenWakeWordFeatures, dict[str, OpenWakeWord]] | None = self._new_state()
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(
                f"openWakeWord could not load its models ({exc}); run `appliance-cli models verify`"
            ) from exc

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._paths[2])

    def stream(self) -> WakeStream:
        return _OwwStream(self, self._worker)

    def scorer(self) -> WakeScorer:
        return _OwwScorer(self, self._worker)

    def _new_state(self) -> tuple[OpenWakeWordFeatures, dict[str, OpenWakeWord]]:
        from pyopen_wakeword import OpenWakeWord, OpenWakeWordFeatures

        mel, emb, models = self._paths
        features = OpenWakeWordFeatures(
            melspectrogram_model=mel, embedding_model=emb, libtensorflowlite_c_path=_tflite_lib()
        )
        words = {
            name: OpenWakeWord.from_model(path, libtensorflowlite_c_path=_tflite_lib()) for name, path in models.items()
        }
        return features, words

    def _take_state(self) -> tuple[OpenWakeWordFeatures, dict[str, OpenWakeWord]]:
        spare, self._spare = self._spare, None
        return spare if spare is not None else self._new_state()

    def score_all(self, frame: AudioFrame) -> dict[str, np.ndarray]:
        """Per-chunk scores of every wake word over a whole recording (for calibration and tests)."""
        features, words = self._new_state()
        scores: dict[str, list[float]] = {name: [] for name in words}
        for chunk in _chunks(frame.data):
            for emb in features.process_streaming(chunk.tobytes()):
                for name, model in words.items():
                    scores[name].extend(model.process_streaming(emb))
        return {name: np.array(s, dtype=np.float32) for name, s in scores.items()}

    def close(self) -> None:
        self._worker.close()


def _tflite_lib() -> Path:
    from pyopen_wakeword.openwakeword import _find_tensorflowlite_c

    return Path(_find_tensorflowlite_c())


def _chunks(samples: np.ndarray) -> list[np.ndarray]:
    whole = samples.size - samples.size % CHUNK_SAMPLES
    return [samples[i : i + CHUNK_SAMPLES] for i in range(0, whole, CHUNK_SAMPLES)]


class WakeTracker:
    """One listener's detection state: feed 16 kHz audio, get detections (blocking; run on the wake worker)."""

    def __init__(self, detector: OpenWakeWordDetector) -> None:
        self._detector = detector
        self._settings = detector.settings
        self._state: tuple[OpenWakeWordFeatures, dict[str, OpenWakeWord]] | None = None
        self._pending = np.zeros(0, dtype=np.int16)
        self._samples_in = 0
        self._streak: dict[str, int] = {}
        self._last_fire: dict[str, float] = {}

    @property
    def seconds(self) -> float:
        """Seconds of audio scored so far (the clock of the detections' timestamps)."""
        return self._samples_in / SAMPLE_RATE

    def process(self, frames: list[AudioFrame], job: Job | None = None) -> list[WakeDetected]:
        """Score the frames; a cancelled ``job`` stops between chunks (the rest is dropped)."""
        if self._state is None:
            self._state = self._detector._take_state()
        features, words = self._state
        for frame in frames:
            if frame.sample_rate != SAMPLE_RATE or frame.num_channels != 1:
                raise ValueError("wake detection takes 16 kHz mono frames; resample first")
        if frames:
            self._pending = np.concatenate([self._pending, *(f.data for f in frames)])
        events: list[WakeDetected] = []
        chunks = _chunks(self._pending)
        self._pending = self._pending[len(chunks) * CHUNK_SAMPLES :]
        for chunk in chunks:
            if job is not None and job.cancelled:
                break
            self._samples_in += CHUNK_SAMPLES
            now = self._samples_in / SAMPLE_RATE
            for emb in features.process_streaming(chunk.tobytes()):
                for name, model in words.items():
                    for score in model.process_streaming(emb):
                        event = self._decide(name, score, now)
                        if event:
                            events.append(event)
        return events

    def _decide(self, name: str, score: float, now: float) -> WakeDetected | None:
        s = self._settings
        self._streak[name] = self._streak.get(name, 0) + 1 if score >= s.threshold else 0
        if self._streak[name] < s.patience:
            return None
        last = self._last_fire.get(name)
        if last is not None and now - last < s.refractory:
            return None
        self._last_fire[name] = now
        self._streak[name] = 0
        logger.debug("wake word detected", extra={"wake_word": name, "score": score, "t": now})
        return WakeDetected(name=name, score=float(score), timestamp=now)


class _OwwStream(WorkerStream[AudioFrame, WakeDetected]):
    def __init__(self, detector: OpenWakeWordDetector, worker: Worker) -> None:
        self._tracker = WakeTracker(detector)
        super().__init__(worker, name="wake-stream", timeout=DETECT_TIMEOUT)

    def _process(self, items: list[AudioFrame], flush: bool) -> list[WakeDetected]:
        return self._tracker.process(items)


class _OwwScorer(WakeScorer):
    def __init__(self, detector: OpenWakeWordDetector, worker: Worker) -> None:
        self._tracker = WakeTracker(detector)
        self._worker = worker

    async def score(self, frames: list[AudioFrame]) -> list[WakeDetected]:
        return await self._worker.run(
            lambda job: self._tracker.process(frames, job), bound=DETECT_TIMEOUT, what="wake-word detection"
        )
