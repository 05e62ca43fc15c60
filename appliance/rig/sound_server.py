"""A real PulseAudio server with virtual devices, for end-to-end tests, benchmarks and calibration runs.

The microphone is a pipe source fed in real time from a FIFO; the speaker is a null sink whose monitor
is recorded with ``parec``. Both sides keep wall-clock timestamps (``time.time()``), so what was said and
what was heard can be lined up from outside the daemon.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame, to_int16
from appliance.errors import AudioDeviceError
from appliance.rig.acoustic import AcousticPath

logger = logging.getLogger(__name__)

MIC = "virtual_mic"
SPEAKER = "virtual_speaker"
BLOCK = 320
"""Samples per write and per read: 20 ms at 16 kHz."""
START_TIMEOUT = 15.0
RESAMPLE_METHOD = "soxr-vhq"
"""The server's rate conversion. Its default (speex-float-1) aliases what lies above the new Nyquist back into
the band: the echo path would add sound that was never played, which no echo canceller can take out."""


class VirtualSoundServer:
    """``with VirtualSoundServer(dir) as server:`` a private PulseAudio; ``server.env`` points clients at it."""

    def __init__(self, root: Path, speaker_rate: int = 22050) -> None:
        self.root = root
        self.fifo = root / "mic.fifo"
        self.runtime = root / "run"
        self.speaker_rate = speaker_rate
        self._proc: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "XDG_RUNTIME_DIR": str(self.runtime),
            "PULSE_SERVER": f"unix:{self.runtime / 'pulse' / 'native'}",
        }

    def start(self) -> None:
        for tool in ("pulseaudio", "pactl", "parec"):
            if shutil.which(tool) is None:
                raise AudioDeviceError(f"{tool} is not installed; run ./scripts/install (it installs pulseaudio)")
        self.runtime.mkdir(parents=True, exist_ok=True)
        self.runtime.chmod(0o700)
        with contextlib.suppress(FileNotFoundError):
            self.fifo.unlink()  # the pipe source makes its own
        script = self.root / "default.pa"
        script.write_text(
            "load-module module-native-protocol-unix\n"
            # norewinds: with rewinds the null sink renders audio again after a rewind, and its clock then
            # runs a few per cent slow against the microphone's (measured: 96 % of the nominal rate)
            f"load-module module-null-sink sink_name={SPEAKER} rate={self.speaker_rate} channels=1 norewinds=1\n"
            f"load-module module-pipe-source source_name={MIC} file={self.fifo} format=s16le "
            f"rate={SAMPLE_RATE} channels=1\n"
            f"set-default-sink {SPEAKER}\nset-default-source {MIC}\n"
        )
        log = (self.root / "pulseaudio.log").open("ab")
        self._proc = subprocess.Popen(
            [
                "pulseaudio",
                "-n",
                "-F",
                str(script),
                "--daemonize=no",
                "--exit-idle-time=-1",
                "--log-target=stderr",
                f"--resample-method={RESAMPLE_METHOD}",
            ],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            ok = subprocess.run(["pactl", "info"], env=self.env, capture_output=True, check=False).returncode == 0
            if ok and self.fifo.exists():
                return
            if self._proc.poll() is not None:
                break
            time.sleep(0.1)
        self.stop()
        raise AudioDeviceError(f"PulseAudio did not start; see {self.root / 'pulseaudio.log'}")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def __enter__(self) -> VirtualSoundServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Clip:
    """When a fed clip's first and last samples went into the microphone."""

    def __init__(self, audio: AudioFrame) -> None:
        self.audio = audio
        self.started: float | None = None
        self.ended: float | None = None
        self.done = threading.Event()


class MicFeeder:
    """Writes the microphone in real time: queued clips, and silence between them (a quiet room)."""

    def __init__(self, fifo: Path, noise_level: float = 0.0, echo: AcousticPath | None = None) -> None:
        self.fifo = fifo
        self.noise_level = noise_level
        """Standard deviation (in int16 units) of the room noise between clips."""
        self.echo = echo
        """The speaker as the microphone hears it, mixed into every block (None: no acoustic path)."""
        self._clips: collections.deque[Clip] = collections.deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mic-feeder", daemon=True)
        self._rng = np.random.default_rng(0)

    def start(self) -> MicFeeder:
        self._thread.start()
        return self

    def play(self, audio: AudioFrame) -> Clip:
        if audio.sample_rate != SAMPLE_RATE or audio.num_channels != 1:
            raise ValueError("the virtual microphone takes 16 kHz mono audio")
        clip = Clip(audio)
        with self._lock:
            self._clips.append(clip)
        return clip

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _open(self) -> int | None:
        try:
            return os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:  # no reader yet (the server is restarting)
            if exc.errno not in (errno.ENXIO, errno.ENOENT):
                raise
            return None

    def _run(self) -> None:
        fd: int | None = None
        start, n = time.monotonic(), 0
        clip: Clip | None = None
        pos = 0
        while not self._stop.is_set():
            n += 1
            if self.echo is None:
                time.sleep(max(0.0, start + n * BLOCK / SAMPLE_RATE - time.monotonic()))
            # else: paced by the speaker's monitor, in ``self.echo.pull`` below
            if clip is None:
                with self._lock:
                    clip = self._clips.popleft() if self._clips else None
                pos = 0
            if clip is not None:
                block = clip.audio.data[pos : pos + BLOCK]
                if pos == 0:
                    clip.started = time.time()
                pos += BLOCK
                if block.size < BLOCK:
                    block = np.concatenate([block, self._silence(BLOCK - block.size)])
            else:
                block = self._silence(BLOCK)
            if self.echo is not None:
                mixed = block.astype(np.float64) + self.echo.pull(BLOCK)
                block = to_int16(mixed)
            if fd is None:
                fd = self._open()
            if fd is not None:
                try:
                    os.write(fd, block.tobytes())
                except BlockingIOError:
                    pass  # the server is behind: drop a block rather than block the clock
                except BrokenPipeError:
                    os.close(fd)
                    fd = None
            if clip is not None and pos >= clip.audio.samples_per_channel:
                clip.ended = time.time()
                clip.done.set()
                clip = None
        if fd is not None:
            os.close(fd)

    def _silence(self, n: int) -> np.ndarray:
        if self.noise_level <= 0:
            return np.zeros(n, np.int16)
        return self._rng.normal(0, self.noise_level, n).astype(np.int16)


class MonitorRecorder:
    """Records the speaker's monitor with ``parec``; every 20 ms block is stamped with its arrival time."""

    def __init__(self, env: dict[str, str]) -> None:
        self._proc = subprocess.Popen(
            [
                "parec",
                f"--device={SPEAKER}.monitor",
                "--format=s16le",
                f"--rate={SAMPLE_RATE}",
                "--channels=1",
                "--latency-msec=10",
                "--raw",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._blocks: list[tuple[float, np.ndarray]] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="monitor-recorder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self._proc.stdout is not None
        while True:
            data = self._proc.stdout.read(BLOCK * 2)
            if not data or len(data) < BLOCK * 2:
                return
            with self._lock:
                self._blocks.append((time.time(), np.frombuffer(data, np.int16)))

    def levels(self, since: float = 0.0, until: float | None = None) -> list[tuple[float, float]]:
        """(time the block ended, level in dBFS) for every block in the window."""
        with self._lock:
            blocks = [(t, b) for t, b in self._blocks if t >= since and (until is None or t <= until)]
        return [(t, AudioFrame(b, SAMPLE_RATE).rms_dbfs()) for t, b in blocks]

    def audio(self, since: float = 0.0, until: float | None = None) -> AudioFrame:
        with self._lock:
            parts = [b for t, b in self._blocks if t >= since and (until is None or t <= until)]
        return AudioFrame(np.concatenate(parts) if parts else np.zeros(0, np.int16), SAMPLE_RATE)

    def first_sound(self, since: float, threshold_dbfs: float = -45.0) -> float | None:
        """When the speaker first made a sound after ``since`` (start of the block)."""
        for t, level in self.levels(since):
            if level > threshold_dbfs:
                return t - BLOCK / SAMPLE_RATE
        return None

    def first_silence(self, since: float, hold: float = 0.2, threshold_dbfs: float = -45.0) -> float | None:
        """When the speaker went quiet after ``since`` and stayed quiet for ``hold`` seconds."""
        quiet_from: float | None = None
        for t, level in self.levels(since):
            if level <= threshold_dbfs:
                if quiet_from is None:
                    quiet_from = t - BLOCK / SAMPLE_RATE
                if t - quiet_from >= hold:
                    return quiet_from
            else:
                quiet_from = None
        return None

    def stop(self) -> None:
        self._proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(5)
        self._thread.join(5)
