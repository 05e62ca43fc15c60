"""The cancelable playback queue, read as a device thread reads it."""

from __future__ import annotations

import time

import numpy as np

from appliance.audio.playback_queue import PlaybackQueue, Segment

BLOCK = 441  # 20 ms at 22.05 kHz


def ramp(n: int, start: int = 1) -> np.ndarray:
    return (np.arange(n) % 30000 + start).astype(np.int16)


def make() -> tuple[PlaybackQueue, list[Segment]]:
    done: list[Segment] = []
    return PlaybackQueue(done.append), done


def test_plays_in_order_then_silence_and_reports_the_whole_segment() -> None:
    queue, done = make()
    audio = ramp(1000)
    queue.push(audio[:600])
    queue.push(audio[600:])
    segment = queue.end_segment()
    out = np.concatenate([queue.read(BLOCK) for _ in range(3)])
    assert np.array_equal(out[:1000], audio) and not out[1000:].any()
    assert done == [segment] and segment.played == 1000 and not segment.interrupted


def test_clear_silences_the_next_block_and_says_how_much_was_heard() -> None:
    queue, done = make()
    queue.push(ramp(BLOCK * 50))
    queue.end_segment()
    queue.read(BLOCK)
    queue.read(BLOCK)
    queue.clear()
    assert not queue.read(BLOCK).any()  # within one block
    assert len(done) == 1 and done[0].interrupted and done[0].played == 2 * BLOCK


def test_clear_ends_queued_and_open_segments_too() -> None:
    queue, done = make()
    queue.push(ramp(100))
    first = queue.end_segment()
    queue.push(ramp(100))  # second segment, still open
    queue.clear()
    assert len(done) == 2 and all(s.interrupted for s in done) and done[0] is first
    assert done[1].played == 0


def test_pause_holds_the_audio_and_resume_continues_where_it_stopped() -> None:
    queue, _ = make()
    audio = ramp(BLOCK * 3)
    queue.push(audio)
    queue.end_segment()
    first = queue.read(BLOCK)
    queue.pause()
    assert not queue.read(BLOCK).any() and queue.available() == 0
    queue.resume()
    rest = np.concatenate([queue.read(BLOCK), queue.read(BLOCK)])
    assert np.array_equal(np.concatenate([first, rest]), audio)


def test_an_empty_segment_is_done_at_once() -> None:
    queue, done = make()
    segment = queue.end_segment()
    assert segment.done and segment.played == 0
    assert not queue.read(BLOCK).any()
    assert done == []  # nothing was queued, nothing to report later


def test_a_producer_that_falls_behind_is_an_underrun_not_the_end() -> None:
    queue, done = make()
    queue.push(ramp(100))
    queue.read(BLOCK)
    assert queue.underruns == 1 and done == []  # the segment is still open: more audio may come
    queue.push(ramp(50))
    queue.end_segment()
    queue.read(BLOCK)
    assert done and done[0].played == 150


def test_finish_sentence_keeps_the_chunk_playing_and_drops_the_rest() -> None:
    queue, done = make()
    sentences = [ramp(1000), ramp(800, 7), ramp(900, 11)]
    for sentence in sentences[:2]:
        queue.push(sentence)
    queue.read(BLOCK)  # the first sentence is playing
    queue.finish_sentence()
    queue.push(sentences[2])  # a sentence synthesized after the stop began: refused
    out = np.concatenate([queue.read(BLOCK) for _ in range(4)])
    assert np.array_equal(out[: 1000 - BLOCK], sentences[0][BLOCK:]) and not out[1000 - BLOCK :].any()
    assert len(done) == 1 and done[0].played == 1000 and done[0].interrupted
    queue.clear()
    queue.push(sentences[2])  # a clear ends the stop: audio is taken again
    assert queue.available() == 900


def test_finish_sentence_before_anything_played_drops_everything() -> None:
    queue, done = make()
    queue.push(ramp(1000))
    segment = queue.end_segment()
    queue.finish_sentence()
    assert done == [segment] and segment.interrupted and segment.played == 0
    assert not queue.read(BLOCK).any()


def test_read_into_fills_the_device_buffer_in_place_and_says_whether_anything_played() -> None:
    queue, done = make()
    out = np.full(BLOCK, 99, np.int16)  # what the device left there last time
    assert not queue.read_into(out) and not out.any()
    queue.push(ramp(100))
    segment = queue.end_segment()
    before = time.time()
    assert queue.read_into(out, delay=0.05)
    assert np.array_equal(out[:100], ramp(100)) and not out[100:].any()
    assert done == [segment] and segment.started_at is not None
    assert before + 0.05 <= segment.started_at <= time.time() + 0.05  # when it is heard, not when it was read


def test_the_queue_is_idle_only_when_nothing_is_queued_open_or_paused() -> None:
    queue, _ = make()
    assert queue.idle
    queue.push(ramp(100))
    assert not queue.idle  # open, not yet flushed
    queue.end_segment()
    queue.pause()
    queue.read(BLOCK)
    assert not queue.idle  # held by the pause: the speaker must not rest under it
    queue.resume()
    queue.read(BLOCK)
    assert queue.idle
