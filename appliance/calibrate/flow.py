"""The calibration run: room sound, the user's voice, the speaker's echo, then the thresholds that fit them."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from appliance.audio.devices import DeviceSpec, find_device
from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.audio.playback import SpeakerOutput
from appliance.calibrate.chirp import EchoPath, echo_path, first_sweep, probe_sound
from appliance.calibrate.levels import WINDOW_SECONDS, RoomLevels, SpeechLevels, measure_room, measure_speech
from appliance.calibrate.meter import LevelMeter
from appliance.calibrate.recorder import MicTap, Take, play_while_recording
from appliance.calibrate.scores import WAKE_CHUNK_SECONDS, vad_probabilities, wake_scores
from appliance.calibrate.thresholds import (
    Choice,
    choose_gate,
    choose_vad,
    choose_wake,
    room_reach,
    speech_reach,
    vad_activity,
    wake_triggers,
)
from appliance.config import Config
from appliance.echo.reference import PlayedAudio
from appliance.engines import Models
from appliance.errors import AudioDeviceError, AudioError, ConfigError
from appliance.vad.silero import SileroVAD
from appliance.wake.openwakeword import OpenWakeWordDetector

logger = logging.getLogger(__name__)

SPEAKER_RATE = 48000
"""Rate asked of the speaker for the sweep (a device that refuses it plays at its own)."""
SWEEP_LEAD = 0.5
"""Seconds recorded before the sweep (the correlation's view of the room)."""
SWEEP_ATTEMPTS = 2
"""Sweeps played at most: a second one only when the first was not heard."""
SWEEP_TAIL = 1.0
"""Seconds recorded after the sweep has played: the longest echo delay that can be found."""
REFERENCE_SECONDS = 16.0
"""What the speaker played is kept this far back: the whole recording around the sweeps (about 6 s, more on
a speaker that is slow to start)."""
LOUD_ECHO_DB = -30.0
"""An echo louder than this (relative to what was played) makes talking over replies need echo cancellation."""
CLOSE_TIMEOUT = 5.0
LOW_SNR_DB = 10.0
"""Below this, speech stands out too little from the room's noise for reliable wake words."""
CLIPPING_LIMIT = 0.001
QUIET_VOICE_DBFS = -45.0


@dataclass(frozen=True)
class Options:
    """How to run a calibration."""

    seconds: float = 5.0
    """Length of the room and the speech recordings."""
    interactive: bool = True
    """Ask before each phase (False: run straight through, printing a line as each phase starts)."""
    speaker: bool = True
    """Play the test sweep to measure the echo path."""
    input_device: DeviceSpec = None
    output_device: DeviceSpec = None


@dataclass(frozen=True)
class Echo:
    """What the test sweep showed about the speaker -> microphone path."""

    heard: bool
    delay: float | None = None
    """Seconds from the sweep sounding at the speaker to its arrival in the microphone stream."""
    level_db: float | None = None
    note: str = ""
    erle_db: float | None = None
    """How much of the echo the echo canceller took out of the recorded probe (None: not measured)."""


@dataclass(frozen=True)
class Result:
    """Everything measured and chosen."""

    room: RoomLevels
    speech: SpeechLevels
    echo: Echo
    room_vad: float
    speech_vad: float | None
    room_wake: tuple[str, float]
    """The wake word that scored highest on room sound, and its score."""
    phrase_wake: tuple[str, float]
    """The highest wake score in the speech take."""
    choices: tuple[Choice, ...]
    false_speech: tuple[tuple[int, float], tuple[int, float]]
    """(utterances started, seconds of speech) the VAD finds in room sound at the old and the new threshold."""
    false_wakes: tuple[int, int]
    """Wake detections on room sound at the old and the new threshold."""
    warnings: tuple[str, ...] = field(default=())

    def changes(self, now: float | None = None) -> dict[str, dict[str, Any]]:
        """The values to write, as ``update_config_file`` takes them."""
        changes: dict[str, dict[str, Any]] = {}
        for choice in self.choices:
            changes.setdefault(choice.section, {})[choice.name] = choice.new
        when = datetime.datetime.now() if now is None else datetime.datetime.fromtimestamp(now)
        stamp = when.astimezone().isoformat(timespec="seconds")
        calibration: dict[str, Any] = {
            "calibrated_at": stamp,
            "noise_floor_dbfs": round(self.room.floor_dbfs, 1),
            "speech_dbfs": round(self.speech.speech_dbfs, 1),
            "snr_db": round(self.speech.snr_db, 1),
        }
        if self.echo.heard and self.echo.level_db is not None:
            calibration["echo_level_db"] = round(self.echo.level_db, 1)
        if self.echo.heard and self.echo.delay is not None:
            calibration["echo_delay"] = round(self.echo.delay, 3)
        if self.echo.heard and self.echo.erle_db is not None:
            calibration["erle_db"] = round(self.echo.erle_db, 1)
        changes["calibration"] = calibration
        return changes


def ask_stdin(question: str) -> str:
    """The user's answer on stdin; a closed stdin (a script) is an error that says what to pass."""
    try:
        return input(question)
    except EOFError as exc:
        raise ConfigError("calibrate asks questions on stdin; pass --non-interactive for scripted use") from exc


def wake_phrase(word: str) -> str:
    """What to say for a wake-word model name: ``hey_jarvis`` -> ``Hey Jarvis``."""
    return word.replace("_", " ").title()


class Calibrator:
    """Runs the phases in order; prints a line as each starts (``say``) and feeds the meter while recording."""

    def __init__(
        self,
        config: Config,
        models: Models,
        options: Options,
        *,
        say: Callable[[str], None],
        meter: LevelMeter,
        ask: Callable[[str], str] = ask_stdin,
    ) -> None:
        self.config, self.models, self.options = config, models, options
        self._say, self._meter, self._ask = say, meter, ask
        self.sentence = f"{wake_phrase(config.wake.words[0])}, what will the weather be like tomorrow?"

    def run(self) -> Result:
        o = self.options
        find_device(o.input_device, "input")  # a wrong microphone fails before anything else happens
        speaker = o.speaker and self._speaker_there()
        choice = self.config.engines()
        vad, wake = self.models.vad(choice), self.models.wake(choice)
        # calibration reads the models' raw scores, which the stage interfaces do not carry
        if not isinstance(vad, SileroVAD) or not isinstance(wake, OpenWakeWordDetector):
            raise ConfigError("calibrate measures the local Silero VAD and openWakeWord models only")
        try:
            return self._run(vad, wake, speaker)
        finally:
            wake.close()
            vad.close()

    def _speaker_there(self) -> bool:
        try:
            find_device(self.options.output_device, "output")
        except AudioDeviceError:
            if self.options.output_device not in (None, ""):
                raise  # a speaker was named: it must be there
            self.say("calibrate: no speaker found; skipping the echo measurement")
            return False
        return True

    def say(self, line: str) -> None:
        self._meter.clear()
        self._say(line)

    def _prompt(self, text: str) -> None:
        if not self.options.interactive:
            return
        self._meter.clear()
        self._ask(f"{text}\nPress Enter to start. ")

    def _run(self, vad: SileroVAD, wake: OpenWakeWordDetector, speaker: bool) -> Result:
        s = self.options.seconds
        self._prompt("Stay quiet for a moment, with the room as it usually is (fans, fridge, heating on).")
        room_take = asyncio.run(self._record("room sound", f"calibrate: room sound for {s:g} s, keep quiet"))
        room = measure_room(room_take.audio.data)
        self.say(
            f"room: noise floor {room.floor_dbfs:.1f} dBFS (RMS {room.rms_dbfs:.1f}; 32 ms windows p10 {room.p10:.1f},"
            f" p90 {room.p90:.1f}, p99 {room.p99:.1f}; peak {room.peak_dbfs:.1f} dBFS)"
        )
        self._prompt(f'Now, from where you usually talk to it and as loud as usual, say:\n  "{self.sentence}"')
        speech_take = asyncio.run(self._record("speech", f'calibrate: speak now, {s:g} s: "{self.sentence}"'))
        speech = measure_speech(speech_take.audio.data, room)
        if not speech.heard:
            raise AudioError(
                f"no voice heard above the room ({room.floor_dbfs:.0f} dBFS) while recording your sentence;"
                " speak within the time shown, closer to the microphone, and run calibrate again"
            )
        self.say(
            f"speech: {speech.speech_dbfs:.1f} dBFS over {speech.voiced_seconds:.1f} s of voice;"
            f" SNR {speech.snr_db:.1f} dB; clipping {100 * speech.clipped_fraction:.2f} % of samples"
        )
        echo = Echo(False, note="skipped (--no-speaker)" if not self.options.speaker else "skipped (no speaker found)")
        if speaker:
            self._prompt("Next, a short sweep through the speaker: set its volume where you usually have it.")
            for attempt in range(1, SWEEP_ATTEMPTS + 1):
                take, reference = asyncio.run(self._play_sweep())
                path = echo_path(*first_sweep(reference, take.audio))
                if path.heard or attempt == SWEEP_ATTEMPTS:
                    break
                # a sweep that a skip of the speaker or a burst of room noise broke up correlates poorly:
                # "no echo" must hold for a second sweep before the appliance counts on it
                self.say("calibrate: no echo heard; playing the sweep once more to be sure")
            echo = echo_from(path, take, reference)
        self.say(f"echo: {describe_echo(echo)}")
        return self._choose(vad, wake, room_take, speech_take, room, speech, echo)

    async def _record(self, label: str, announce: str) -> Take:
        tap = MicTap(self.options.input_device, self._meter)
        try:
            await tap.start()
            self.say(announce)
            self._meter.phase(label, self.options.seconds)
            return await tap.record(self.options.seconds)
        finally:
            await tap.aclose()
            self._meter.stop()

    async def _play_sweep(self) -> tuple[Take, AudioFrame]:
        """The recording around the sweeps, and what the speaker played on the recording's time line
        (at 16 kHz; silence where it played nothing)."""
        tap = MicTap(self.options.input_device, self._meter)
        out = SpeakerOutput(self.options.output_device, SPEAKER_RATE, rest_after=0)
        played = PlayedAudio(ring_seconds=REFERENCE_SECONDS)  # read once, after the whole recording
        out.tap = played.tap
        try:
            await tap.start()
            self._meter.phase("echo")
            await out.start()
            self.say(f"calibrate: playing test sweeps through the speaker {out.device_name!r}")
            take, _ = await play_while_recording(tap, out, probe_sound, SWEEP_LEAD, SWEEP_TAIL)
        finally:
            await asyncio.wait_for(out.aclose(), CLOSE_TIMEOUT)
            await tap.aclose()
            self._meter.stop()
        if take.captured_at is None:
            raise AudioError("the microphone gave no capture times; the echo path cannot be timed")
        return take, AudioFrame(played.read(take.captured_at, take.audio.samples_per_channel), SAMPLE_RATE)

    def _choose(
        self,
        vad: SileroVAD,
        wake: OpenWakeWordDetector,
        room_take: Take,
        speech_take: Take,
        room: RoomLevels,
        speech: SpeechLevels,
        echo: Echo,
    ) -> Result:
        c = self.config
        room_audio = room_take.audio.data
        room_p = vad_probabilities(vad, room_take.audio, room_audio)
        speech_p = vad_probabilities(vad, speech_take.audio, room_audio)
        room_scores = wake_scores(wake, room_take.audio, room_audio)
        room_word, room_peak = _peak(room_scores)
        phrase_word, phrase_peak = _peak(wake_scores(wake, speech_take.audio, room_audio))
        room_vad, speech_vad = room_reach(room_p), speech_reach(speech_p, speech.voiced)
        vad_choice = choose_vad(c.vad.threshold, room_vad, speech_vad)
        wake_choice = choose_wake(c.wake.threshold, room_peak, room_word, phrase_peak)
        gate_choice = choose_gate(c.agent.wake_gate_threshold, room_vad, vad_choice.new)
        activity = tuple(
            vad_activity(room_p, t, c.engines().vad_settings, WINDOW_SECONDS) for t in (vad_choice.old, vad_choice.new)
        )
        wakes = tuple(
            sum(
                wake_triggers(v, t, c.wake.patience, c.wake.refractory, WAKE_CHUNK_SECONDS)
                for v in room_scores.values()
            )
            for t in (wake_choice.old, wake_choice.new)
        )
        choices = (vad_choice, wake_choice, gate_choice)
        logger.debug(
            "calibration measured",
            extra={"room_vad": room_vad, "speech_vad": speech_vad, "room_wake": room_peak, "phrase_wake": phrase_peak},
        )
        return Result(
            room=room,
            speech=speech,
            echo=echo,
            room_vad=room_vad,
            speech_vad=speech_vad,
            room_wake=(room_word, room_peak),
            phrase_wake=(phrase_word, phrase_peak),
            choices=choices,
            false_speech=(activity[0], activity[1]),
            false_wakes=(wakes[0], wakes[1]),
            warnings=tuple(w for w in (*(ch.warning for ch in choices), *_warnings(speech, echo)) if w),
        )


def _peak(scores: dict[str, np.ndarray]) -> tuple[str, float]:
    word = max(scores, key=lambda k: float(scores[k].max()) if scores[k].size else 0.0)
    return word, float(scores[word].max()) if scores[word].size else 0.0


def cancelled_db(recording: AudioFrame, reference: AudioFrame, delay: float) -> float | None:
    """How much the echo canceller takes out of the recorded probe once converged (None: no canceller)."""
    from appliance.echo.offline import cancel_recording, echo_figures

    try:
        cleaned = cancel_recording(recording, reference, delay)
    except ConfigError:  # the canceller's library is missing: the echo is measured, its removal is not
        return None
    figures = echo_figures(recording.data, cleaned.data)
    erle: float | None = figures["erle_db_after_convergence"]
    return erle


def echo_from(path: EchoPath, take: Take, reference: AudioFrame) -> Echo:
    if not path.heard:
        return Echo(False, note="no echo path heard: the sweep did not reach the microphone above the room sound")
    return Echo(True, path.delay, path.level_db, erle_db=cancelled_db(take.audio, reference, path.delay))


def describe_echo(echo: Echo) -> str:
    if not echo.heard:
        return echo.note
    delay = f"delay {echo.delay * 1000:.0f} ms" if echo.delay is not None else echo.note
    erle = f"; echo cancellation takes out {echo.erle_db:.0f} dB of it" if echo.erle_db is not None else ""
    return f"heard the speaker at {echo.level_db:.1f} dB relative to what was played; {delay}{erle}"


def _warnings(speech: SpeechLevels, echo: Echo) -> list[str]:
    warnings = []
    if speech.clipped_fraction > CLIPPING_LIMIT:
        warnings.append(
            f"{100 * speech.clipped_fraction:.1f} % of your speech clipped: lower the microphone gain"
            " (alsamixer / pavucontrol) and calibrate again"
        )
    if speech.speech_dbfs < QUIET_VOICE_DBFS:
        warnings.append(f"your voice arrives quietly ({speech.speech_dbfs:.0f} dBFS): raise the microphone gain")
    if speech.snr_db < LOW_SNR_DB:
        warnings.append(
            f"your voice is only {speech.snr_db:.0f} dB above the room: move the device closer or quieten the room"
        )
    if echo.heard and echo.level_db is not None and echo.level_db > LOUD_ECHO_DB:
        warnings.append(
            f"the microphone hears the speaker loudly ({echo.level_db:.1f} dB): talking over replies needs echo"
            ' cancellation (audio.echo_cancellation = "auto" turns it on from this calibration)'
        )
    return warnings
