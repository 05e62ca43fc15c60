"""Speech segments from per-window speech probabilities: the part of a VAD that is not the model.

Any model that scores fixed windows of 16 kHz audio (Silero, an energy detector in the tests) gets the same
start, pause and end events, with the same padding and the same endpointing rules.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.utils.aio import WorkerStream
from appliance.utils.worker import Worker
from appliance.vad.base import VADEvent, VADEventType, VADSettings, VADStream

KEPT_SILENCE = 0.12
"""Seconds of the closing silence kept at the end of an utterance, and the silence after which a pause is
reported (the early transcript and the turn detector start there): enough for the last word's tail, which the
VAD already hears as speech until its probability falls under ``deactivation_threshold``. At 0.2 s the early
transcript came 0.08 s later than at 0.12 s, on the critical path of every turn."""
BATCH_TIMEOUT = 5.0
"""Seconds one batch of windows may take on the worker before the stream fails (a wedged engine)."""

Scorer = Callable[[np.ndarray], float]
"""Speech probability of one window of int16 samples (stateful: called in order)."""


class WindowedVADStream(WorkerStream[AudioFrame, VADEvent], VADStream):
    def __init__(self, worker: Worker, settings: VADSettings, scorer: Scorer, window: int) -> None:
        s = settings
        self._s = s
        self._score = scorer
        self._window_size = window
        self._pending = np.zeros(0, dtype=np.int16)
        self._pad: collections.deque[np.ndarray] = collections.deque(
            # the padding, plus the windows that confirm the speech before START fires
            maxlen=1 + math.ceil((s.prefix_padding + s.min_speech_duration) * SAMPLE_RATE / window)
        )
        self._speech: list[np.ndarray] = []
        self._speaking = False
        self._speech_run = 0.0
        self._speech_duration = 0.0
        self._silence_duration = 0.0
        self._speech_start = 0.0
        self._pause_sent = False
        self._pause_window = -1
        self._end_request: tuple[int, float] | None = None
        """(window of the pause, its silence that ends the utterance): set from the event loop's thread,
        read in the worker's; one tuple, replaced whole."""
        self._windows = 0
        # mean square of int16 samples at the floor: one comparison per window, no log
        self._floor = (10 ** (s.energy_floor / 20) * 32768.0) ** 2
        self.skipped = 0
        """Windows taken as silence without the model (below ``energy_floor``)."""
        super().__init__(worker, name="vad-stream", timeout=BATCH_TIMEOUT)

    def _process(self, items: list[AudioFrame], flush: bool) -> list[VADEvent]:
        for frame in items:
            if frame.sample_rate != SAMPLE_RATE or frame.num_channels != 1:
                raise ValueError("vad stream takes 16 kHz mono frames; resample first")
        if items:
            self._pending = np.concatenate([self._pending, *(f.data for f in items)])
        events: list[VADEvent] = []
        w = self._window_size
        n = self._pending.size // w
        for i in range(n):
            events.extend(self._window(self._pending[i * w : (i + 1) * w]))
        self._pending = self._pending[n * w :]
        return events

    def end_pause(self, at: float, after: float) -> None:
        self._end_request = (round(at * SAMPLE_RATE / self._window_size), after)

    def _ends_early(self) -> bool:
        request = self._end_request
        return (
            request is not None
            and self._pause_sent
            and request[0] == self._pause_window
            and self._silence_duration >= request[1] - 1e-9
        )

    def _finish(self) -> list[VADEvent]:
        # The input ended inside an utterance: close it, so no speech is lost.
        return [self._end(0.0)] if self._speaking else []

    def _window(self, window: np.ndarray) -> list[VADEvent]:
        s, dt = self._s, self._window_size / SAMPLE_RATE
        samples = window.astype(np.float32)
        if float(np.dot(samples, samples)) / max(window.size, 1) >= self._floor:
            p = self._score(window)
        else:
            p = 0.0
            self.skipped += 1
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
        if self._silence_duration >= s.min_silence_duration or too_long or self._ends_early():
            events.append(self._end(p))
        elif self._silence_duration >= KEPT_SILENCE and not self._pause_sent:
            self._pause_sent = True
            self._pause_window = self._windows
            events.append(self._event(VADEventType.SPEECH_PAUSED, p, with_audio=True))
        return events

    def _end(self, p: float) -> VADEvent:
        event = self._event(VADEventType.END_OF_SPEECH, p, with_audio=True)
        self._speaking = False
        self._speech = []
        self._speech_run = 0.0
        self._pause_sent = False
        self._end_request = None
        self._pad.clear()
        return event

    def _event(self, kind: VADEventType, p: float, *, with_audio: bool = False) -> VADEvent:
        frames: tuple[AudioFrame, ...] = ()
        frames_start = 0.0
        w = self._window_size
        if with_audio:
            # the utterance keeps KEPT_SILENCE of its closing silence, no more
            drop = int(max(0.0, self._silence_duration - KEPT_SILENCE) * SAMPLE_RATE / w)
            kept = self._speech[: len(self._speech) - drop] if drop else self._speech
            audio = np.concatenate(kept) if kept else np.zeros(0, np.int16)
            frames = (AudioFrame(audio, SAMPLE_RATE),)
            frames_start = ((self._windows - drop) * w - audio.size) / SAMPLE_RATE
        return VADEvent(
            kind,
            self._windows * w / SAMPLE_RATE,
            p,
            self._speech_duration,
            self._silence_duration,
            self._speech_start,
            frames,
            frames_start,
        )
