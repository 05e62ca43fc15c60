"""The microphone's hand-off from the device thread to the loop, fed as the device's callback would be.

The blocks are synthetic: room noise (about -60 dBFS) and a loud tone.
"""

from __future__ import annotations

import asyncio

import numpy as np
import sounddevice as sd

from appliance.audio.capture import CAPTURE_BLOCK, MicrophoneInput
from tests.helpers import run

BLOCK = 512
HOLD_BLOCKS = 3


def room(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 30, (BLOCK, 1)).astype(np.int16)


def loud(seed: int) -> np.ndarray:
    return (np.sin(np.arange(BLOCK) / 5.0 + seed) * 8000).astype(np.int16).reshape(BLOCK, 1)


async def feed(mic: MicrophoneInput, blocks: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Each block as one device callback; what reached the loop in each hand-off."""
    handed: list[list[np.ndarray]] = []
    mic._loop = asyncio.get_running_loop()
    # each hand-off carries (samples, capture time) pairs: the samples are what is compared
    mic._put = lambda block, held=None: handed.append([b[0] for b in (held, block) if b is not None])  # type: ignore[method-assign]
    for block in blocks:
        mic._callback(block, BLOCK, None, sd.CallbackFlags())
        await asyncio.sleep(0)
    return handed


def test_a_quiet_room_is_handed_over_two_blocks_at_a_time_after_the_hold() -> None:
    mic = MicrophoneInput(quiet_level=-55.0, quiet_hold=HOLD_BLOCKS * CAPTURE_BLOCK)
    blocks = [room(i) for i in range(HOLD_BLOCKS + 7)]
    handed = run(feed(mic, blocks))
    assert [len(h) for h in handed] == [1] * HOLD_BLOCKS + [2, 2, 2]
    assert np.array_equal(np.concatenate([b for h in handed for b in h]), np.concatenate(blocks[:-1])[:, 0])
    assert mic._held is not None  # the last one waits for its partner


def test_speech_after_a_quiet_spell_goes_out_at_once_with_the_block_held() -> None:
    mic = MicrophoneInput(quiet_level=-55.0, quiet_hold=HOLD_BLOCKS * CAPTURE_BLOCK)
    blocks = [room(i) for i in range(HOLD_BLOCKS + 1)] + [loud(0), loud(1), room(99)]
    handed = run(feed(mic, blocks))
    assert [len(h) for h in handed] == [1] * HOLD_BLOCKS + [2, 1, 1]
    assert np.array_equal(handed[-3][1], blocks[-3][:, 0])  # the loud block, not held back
    assert np.array_equal(np.concatenate([b for h in handed for b in h]), np.concatenate(blocks)[:, 0])


def test_without_a_quiet_level_every_block_goes_out_as_it_comes() -> None:
    handed = run(feed(MicrophoneInput(), [room(i) for i in range(200)]))
    assert [len(h) for h in handed] == [1] * 200
