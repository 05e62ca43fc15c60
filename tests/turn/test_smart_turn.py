"""Smart Turn v3 on REAL speech (pocketsphinx recordings), whole and cut mid-phrase, and on SYNTHETIC Piper
speech; its failures, bound, cancellation and close."""

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance.audio.frame import AudioFrame
from appliance.audio.wav import read_audio
from appliance.engines import EngineChoice, Models
from appliance.errors import APITimeoutError, AudioError, ConfigError, ModelError
from appliance.turn.base import TurnDetector, TurnSettings
from appliance.turn.smart_turn import SmartTurn
from tests.helpers import join, run, silence

PAUSE = 0.2
"""Seconds of silence a VAD pause carries at the end of the utterance."""
CUT = 4.2
"""Seconds into the Dashwood clip just after "... had then leisure to consider how much"."""


@pytest.fixture(scope="module")
def turn(models: Models) -> Iterator[SmartTurn]:
    detector = models.turn_detector(EngineChoice())
    assert isinstance(detector, SmartTurn)
    yield detector
    detector.close()


@pytest.fixture(scope="module")
def dashwood(corpus: Path) -> AudioFrame:
    """Real speech, one whole sentence: 'and mister john dashwood had then leisure to consider how much there
    might be prudently in his power to do for them' (7.1 s)."""
    return read_audio(corpus / "librivox" / "sense_and_sensibility_01_austen_64kb-0870.wav")


def paused(audio: AudioFrame, until: float | None = None) -> AudioFrame:
    """The utterance (up to ``until`` seconds) as it stands at a pause."""
    end = audio.data.size if until is None else int(until * audio.sample_rate)
    return join(audio.data[:end], silence(PAUSE))


def test_a_finished_sentence_scores_complete(turn: SmartTurn, dashwood: AudioFrame, go_forward: AudioFrame) -> None:
    for audio in (dashwood, go_forward):
        probability = run(turn.completion(paused(audio)))
        assert turn.complete(probability), probability


def test_the_same_sentence_cut_mid_phrase_scores_incomplete(turn: SmartTurn, dashwood: AudioFrame) -> None:
    whole = run(turn.completion(paused(dashwood)))
    cut = run(turn.completion(paused(dashwood, CUT)))
    assert not turn.complete(cut), cut
    assert cut < whole - 0.5


def test_synthetic_speech_ending_on_and_scores_incomplete(turn: SmartTurn, synth: Callable[[str], AudioFrame]) -> None:
    # The model hears prosody, not words: Piper closes every text with a falling, final tone, so
    # "Set a timer for" alone sounds finished to it; a trailing "and" still sounds like more to come.
    whole = turn.completion_sync(paused(synth("Set a timer for ten minutes.")))
    cut = turn.completion_sync(paused(synth("Set a timer for ten minutes and")))
    assert turn.complete(whole) and not turn.complete(cut), (whole, cut)


def test_only_the_last_eight_seconds_count(turn: SmartTurn, dashwood: AudioFrame, go_forward: AudioFrame) -> None:
    longer = join(dashwood.data, go_forward.data, silence(PAUSE))
    assert turn.completion_sync(longer) == turn.completion_sync(AudioFrame(longer.data[-8 * 16000 :], 16000))


def test_inference_leaves_the_event_loop_free(turn: SmartTurn, dashwood: AudioFrame) -> None:
    async def go() -> int:
        task = asyncio.create_task(turn.completion(dashwood))
        ticks = 0
        while not task.done():
            await asyncio.sleep(0.002)
            ticks += 1
        await task
        return ticks

    assert run(go()) >= 3


class Fixed(TurnDetector):
    def __init__(self, settings: TurnSettings) -> None:
        self.settings = settings

    async def completion(self, audio: AudioFrame) -> float:
        return 0.0


def test_threshold_decides_and_is_checked() -> None:
    strict = Fixed(TurnSettings(threshold=0.9))
    assert not strict.complete(0.85) and strict.complete(0.9)
    assert Fixed(TurnSettings()).complete(0.5)
    with pytest.raises(ConfigError, match=r"turn\.threshold"):
        TurnSettings(threshold=1.5)


def test_audio_it_cannot_judge_is_refused(turn: SmartTurn) -> None:
    with pytest.raises(AudioError, match="empty"):
        turn.completion_sync(AudioFrame(np.zeros(0, np.int16), 16000))
    with pytest.raises(ValueError, match="16 kHz"):
        turn.completion_sync(AudioFrame(np.zeros(800, np.int16), 8000))


def test_a_bad_model_file_is_a_model_error(tmp_path: Path, models: Models) -> None:
    garbage = tmp_path / "smart-turn.onnx"
    garbage.write_bytes(b"\x00not an onnx model" * 100)
    with pytest.raises(ModelError, match="models verify"):
        SmartTurn(garbage)
    with pytest.raises(ModelError, match="not a Smart Turn"):
        SmartTurn(models.path("silero_vad", "vad"))


def test_a_judgement_over_its_bound_is_a_retryable_timeout(models: Models, go_forward: AudioFrame) -> None:
    hasty = SmartTurn(models.path("smart-turn-v3.2", "turn"), timeout=0.001)
    try:
        with pytest.raises(APITimeoutError, match="turn detection") as caught:
            run(hasty.completion(go_forward))
        assert caught.value.retryable
        assert 0.0 <= hasty.completion_sync(go_forward) <= 1.0  # still works
    finally:
        hasty.close()


class Watched:
    """An ONNX session that records how each run ended."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.started = threading.Event()
        self.outcomes: list[str] = []

    def run(self, *args: Any) -> Any:
        self.started.set()
        try:
            out = self.session.run(*args)
        except Exception:
            self.outcomes.append("stopped")
            raise
        self.outcomes.append("finished")
        return out


def test_a_cancelled_judgement_is_stopped_inside_onnxruntime(models: Models, dashwood: AudioFrame) -> None:
    own = SmartTurn(models.path("smart-turn-v3.2", "turn"))
    watched = Watched(own._session)
    own._session = watched

    async def go() -> float:
        first = asyncio.create_task(own.completion(dashwood))
        assert await asyncio.to_thread(watched.started.wait, 5.0)
        first.cancel()
        return await own.completion(dashwood)

    try:
        assert 0.0 <= run(go()) <= 1.0
    finally:
        own.close()
    assert watched.outcomes == ["stopped", "finished"]


def test_close_waits_for_the_running_judgement_then_refuses_more(models: Models, dashwood: AudioFrame) -> None:
    own = SmartTurn(models.path("smart-turn-v3.2", "turn"))

    async def go() -> float:
        task = asyncio.create_task(own.completion(dashwood))
        await asyncio.sleep(0.01)
        await asyncio.to_thread(own.close)
        return await task

    assert 0.0 <= run(go()) <= 1.0
    with pytest.raises(RuntimeError, match="closed"):
        run(own.completion(dashwood))
    own.close()  # a second close is harmless
