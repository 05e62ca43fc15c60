"""WebRTC's echo canceller on real recorded speech (pocketsphinx-testdata LibriVox clips) through an echo
path with the room tail of the test rig: what it takes out, and what of the user it leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.io import AudioInput
from appliance.audio.wav import read_audio
from appliance.echo.base import BLOCK
from appliance.echo.gate import TAIL_BLOCKS, ResidualGate
from appliance.echo.input import LEAD, EchoCancellingInput
from appliance.echo.offline import echo_figures
from appliance.echo.reference import PlayedAudio
from appliance.echo.webrtc import WebRTCEchoCanceller
from appliance.rig.acoustic import EchoSettings

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")


def _speech(name: str) -> np.ndarray:
    path = LIBRIVOX / f"sense_and_sensibility_01_austen_64kb-{name}.wav"
    if not path.is_file():
        pytest.skip("pocketsphinx-testdata is not installed (./scripts/install --test installs it)")
    return read_audio(path).data.astype(np.float64)


def _through(path: EchoSettings, far: np.ndarray) -> np.ndarray:
    delayed = np.concatenate([np.zeros(round(path.delay * SAMPLE_RATE)), far])[: far.size]
    return np.convolve(delayed, path.impulse_response())[: far.size]


def _cancel(near: np.ndarray, far: np.ndarray) -> np.ndarray:
    canceller = WebRTCEchoCanceller()
    out = np.zeros(near.size, np.int16)
    for i in range(0, near.size - BLOCK + 1, BLOCK):
        out[i : i + BLOCK] = canceller.process(near[i : i + BLOCK], far[i : i + BLOCK])
    return out


def _int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize(("delay", "gain_db"), [(0.02, -12.0), (0.08, -6.0), (0.12, 0.0)])
def test_the_echo_of_speech_is_taken_out_by_25_db_once_converged(delay: float, gain_db: float) -> None:
    far = _speech("0870")
    echo = _through(EchoSettings(delay=delay, gain_db=gain_db), far)
    noise = np.random.default_rng(2).normal(0, 3, far.size)  # a very quiet room: ERLE not capped by noise
    out = _cancel(_int16(echo + noise), _int16(far))
    figures = echo_figures(_int16(echo + noise), out)
    assert figures["erle_db_after_convergence"] >= 25.0, figures
    assert figures["converged_after_seconds"] is not None and figures["converged_after_seconds"] <= 2.0


def test_the_user_talking_over_the_echo_is_kept() -> None:
    """Double talk: the user's speech comes through within a few dB while the echo under it is removed."""
    far = _speech("0870")
    user = _speech("0920")[: far.size - 4 * SAMPLE_RATE]
    echo = _through(EchoSettings(delay=0.08, gain_db=-6.0), far)
    talk = np.zeros(far.size)
    talk[4 * SAMPLE_RATE : 4 * SAMPLE_RATE + user.size] = user * 0.5  # about as loud as the echo
    span = slice(4 * SAMPLE_RATE, 4 * SAMPLE_RATE + user.size)
    with_user = _cancel(_int16(echo + talk), _int16(far)).astype(np.float64)[span]
    echo_only = _cancel(_int16(echo), _int16(far)).astype(np.float64)[span]
    talk_power = np.mean(talk[span] ** 2)
    assert 10 * np.log10(np.mean(with_user**2) / talk_power) > -4.0  # the user's voice is not cut with the echo
    assert 10 * np.log10(talk_power / np.mean(echo_only**2)) > 20.0  # while what was echo alone is gone


class _Stamped(AudioInput):
    """A recording as a microphone whose frames carry capture times, as a device's do."""

    def __init__(self, audio: np.ndarray, start: float) -> None:
        self.audio, self.start = audio, start

    def __aiter__(self) -> AsyncIterator[AudioFrame]:
        return self._frames()

    async def _frames(self) -> AsyncIterator[AudioFrame]:
        step = 512
        for i in range(0, self.audio.size - step + 1, step):
            self.captured_at = self.start + i / SAMPLE_RATE
            yield AudioFrame(self.audio[i : i + step], SAMPLE_RATE)
            await asyncio.sleep(0)


def _through_input(mic: np.ndarray, far: np.ndarray) -> tuple[EchoCancellingInput, list[np.ndarray]]:
    """``mic`` read through the echo-cancelling input, with ``far`` tapped as the speaker's 20 ms blocks heard
    from the microphone's first sample on: the input, and the frames it handed on."""
    played = PlayedAudio()
    at = 1000.0
    reply = _int16(far)
    for i in range(0, reply.size - 320 + 1, 320):
        played.tap(reply[i : i + 320], SAMPLE_RATE, at + i / SAMPLE_RATE)
    echo_input = EchoCancellingInput(_Stamped(mic, at), played, WebRTCEchoCanceller(), delay=0.04)

    async def read() -> list[np.ndarray]:
        return [f.data async for f in echo_input]

    return echo_input, asyncio.run(read())


def test_the_input_lines_the_microphone_up_with_what_the_speaker_played() -> None:
    """The wrapper takes the reference from the speaker's tap by time, 10 ms at a time, and hands on
    frames of whole blocks: the echo of a reply tapped at 22.05 kHz is taken out of the microphone."""
    far = _speech("0870")
    path = EchoSettings(delay=0.05, gain_db=-6.0)
    mic = _int16(_through(path, far) + np.random.default_rng(3).normal(0, 3, far.size))
    echo_input, frames = _through_input(mic, far)
    assert all(f.size % BLOCK == 0 for f in frames)
    out = np.concatenate(frames)
    figures = echo_figures(mic[: out.size], out)
    assert figures["erle_db_after_convergence"] >= 25.0, figures
    assert echo_input.snapshot()["converged"] is True
    assert LEAD > 0


def test_the_user_talking_over_the_end_of_a_reply_is_not_counted_as_echo_left() -> None:
    """The live figures pool the last 2 s of playback. A talk-over fills them with a voice that is in the
    microphone and the output alike: counted, it read as a canceller taking out 3 dB, "not converged", until
    the next reply. The blocks the gate let through as the user are left out."""
    far = _speech("0870")
    user = _speech("0920")[: 3 * SAMPLE_RATE] * 2.0  # about 6 dB over the echo, the last 3 s of the reply
    talk = np.zeros(far.size)
    talk[far.size - user.size :] = user
    mic = _int16(_through(EchoSettings(delay=0.05, gain_db=-6.0), far) + talk)
    echo_input, _ = _through_input(mic, far)
    figures = echo_input.snapshot()
    assert figures["converged"] is True, figures  # counting the talk-over too: 1.5 dB, not converged


def test_before_the_canceller_converged_its_leftover_is_silence_but_a_louder_voice_is_not() -> None:
    """The gate: the echo comes out silent while the canceller is still learning (the first 0.2 s here),
    and a user who talks over it from its second second on, louder than the echo, comes through whole."""
    far = _speech("0870")
    echo = _through(EchoSettings(delay=0.08, gain_db=-6.0), far)
    first = slice(0, SAMPLE_RATE // 5)
    leftover = _gated(_int16(echo), _int16(far))[first]
    assert np.mean(leftover.astype(np.float64) ** 2) < 1e-4 * np.mean(echo[first] ** 2)  # the canceller alone: ~30 dB
    user = _speech("0920")[:SAMPLE_RATE] * 2.0  # about 6 dB louder than the echo
    talk = np.zeros(far.size)
    second = slice(SAMPLE_RATE, 2 * SAMPLE_RATE)
    talk[second] = user[:SAMPLE_RATE]
    kept = _gated(_int16(echo + talk), _int16(far))[second].astype(np.float64)
    assert 10 * np.log10(np.mean(kept**2) / np.mean(user**2)) > -3.0


def _gated(near: np.ndarray, far: np.ndarray) -> np.ndarray:
    canceller, gate = WebRTCEchoCanceller(), ResidualGate()
    out = np.zeros(near.size, np.int16)
    for i in range(0, near.size - BLOCK + 1, BLOCK):
        cleaned = canceller.process(near[i : i + BLOCK], far[i : i + BLOCK])
        out[i : i + BLOCK] = gate.apply(near[i : i + BLOCK], far[i : i + BLOCK], cleaned)
    return out


def _quiet(rng: np.random.Generator, n: int, last_bit: bool) -> np.ndarray:
    """A silent speaker: zeros, or (``last_bit``) the noise of a sample's last bit that a converter's dither
    or a sound card makes of silence."""
    return rng.integers(-1, 2, n).astype(np.float64) if last_bit else np.zeros(n)


@pytest.mark.parametrize("mic_gaps", [False, True], ids=["room", "room-with-digital-silence"])
@pytest.mark.parametrize("last_bit", [False, True], ids=["zeros", "last-bit-noise"])
def test_a_reply_starting_in_a_noisy_room_does_not_open_the_gate_for_its_first_echo(
    last_bit: bool, mic_gaps: bool
) -> None:
    """A reply begins after a silence, its first 100 ms barely above nothing (as a voice's leading samples
    are): the room's noise is louder than the echo bar those samples set, but it is not the user, so the
    echo that follows, which the canceller has not learnt yet, comes out silent. With ``mic_gaps``, the
    microphone handed over digital silence for 0.2 s of every 0.5 s before the reply (a gated or muted input,
    a clip's padding played into it): that is not the room, and must not lower its measured noise."""
    rng = np.random.default_rng(4)
    lead = SAMPLE_RATE * 3 // 2
    far = np.concatenate([_quiet(rng, lead, last_bit), rng.normal(0, 2, SAMPLE_RATE // 10), _speech("0870")])
    near = _through(EchoSettings(delay=0.08, gain_db=-6.0), far) + rng.normal(0, 30, far.size)  # a room's noise
    if mic_gaps:
        for start in range(0, lead, SAMPLE_RATE // 2):
            near[start : start + SAMPLE_RATE // 5] = _quiet(rng, SAMPLE_RATE // 5, last_bit)
    out = _gated(_int16(near), _int16(far)).astype(np.float64)
    onset = slice(lead, lead + 2 * SAMPLE_RATE // 5)  # the first 0.4 s of the reply
    assert np.mean(out[onset] ** 2) < 1e-3 * np.mean(near[onset] ** 2), "the echo's onset came through"


@pytest.mark.parametrize("last_bit", [False, True], ids=["zeros", "last-bit-noise"])
def test_the_gate_held_open_by_the_user_closes_in_the_silence_after_and_holds_back_the_next_reply(
    last_bit: bool,
) -> None:
    """The user speaks over the listening chime (the gate opens for them), the device is silent while they
    finish, then its reply starts: the 0.3 s the gate stays open after the user ran out in that silence, so
    the reply's first echo, which the canceller may not have yet, is held back."""
    gate = ResidualGate()
    rng = np.random.default_rng(5)

    def block(level: float) -> np.ndarray:
        return _int16(rng.normal(0, level, BLOCK))

    for _ in range(20):  # the chime, and the user louder than its echo
        gate.apply(block(3000), block(1000), block(3000))
    silent = _int16(_quiet(rng, BLOCK, last_bit))
    for _ in range(TAIL_BLOCKS + 10):  # the user goes on after it, past the chime's echo
        assert gate.apply(block(3000), silent, block(3000)).any()
    for _ in range(40):  # then only the room, with the speaker still silent: it passes
        assert gate.apply(block(30), silent, block(30)).any()
    reply, echo = block(1000), block(500)
    assert not gate.apply(echo, reply, echo).any(), "the reply's first echo came through"
