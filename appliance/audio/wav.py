"""Reading and writing audio files, with errors that say what is wrong and what to do."""

from __future__ import annotations

import io
import logging
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf

from appliance.audio.frame import SAMPLE_RATE, AudioFrame, to_int16
from appliance.audio.resample import Resampler, resample
from appliance.errors import AudioError

logger = logging.getLogger(__name__)


def read_audio(path: Path, rate: int | None = SAMPLE_RATE) -> AudioFrame:
    """Read a WAV (or any libsndfile format) as mono, resampled to ``rate`` unless it is None.

    Raw headerless ``.raw`` files are taken as 16 kHz mono int16, as speech corpora ship them.
    """
    if not path.exists():
        raise AudioError(f"{path}: no such file; give the path of a WAV file")
    if path.is_dir():
        raise AudioError(f"{path} is a directory; give the path of a WAV file")
    try:
        if path.suffix.lower() == ".raw":
            data, file_rate = sf.read(
                path, dtype="int16", samplerate=16000, channels=1, format="RAW", subtype="PCM_16", always_2d=True
            )
        else:
            # libsndfile scales any sample format (8/16/24/32-bit PCM, float) to [-1, 1] in float32; reading
            # float files straight into int16 would give zeros
            data, file_rate = sf.read(path, dtype="float32", always_2d=True)
            data = _to_int16(data)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(
            f"{path}: not a readable audio file ({exc}); convert it to PCM WAV, e.g. `sox in.x -b 16 out.wav`"
        ) from exc
    if data.shape[0] == 0:
        raise AudioError(f"{path} holds no audio samples; record or choose a non-empty file")
    missing = _missing_bytes(path)
    if missing:
        logger.warning(
            f"{path} is cut short: its header promises {missing} more bytes of audio than the file holds "
            "(a recording that did not finish?); what is there is used",
            extra={"path": str(path), "missing_bytes": missing},
        )
    frame = AudioFrame(np.ascontiguousarray(data).reshape(-1), int(file_rate), data.shape[1])
    if rate is None:
        return resample(frame, frame.sample_rate)
    return resample(frame, rate)


def audio_seconds(path: Path) -> float:
    """The file's length in seconds, read from its header (the samples are not read); errors as ``read_audio``."""
    if not path.exists():
        raise AudioError(f"{path}: no such file; give the path of a WAV file")
    if path.is_dir():
        raise AudioError(f"{path} is a directory; give the path of a WAV file")
    if path.suffix.lower() == ".raw":
        return path.stat().st_size / 2 / SAMPLE_RATE
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(
            f"{path}: not a readable audio file ({exc}); convert it to PCM WAV, e.g. `sox in.x -b 16 out.wav`"
        ) from exc
    return float(info.frames) / float(info.samplerate) if info.samplerate else 0.0


def read_blocks(path: Path, seconds: float = 10.0) -> Iterator[AudioFrame]:
    """The file as 16 kHz mono blocks of about ``seconds``, read and resampled as it goes: a file of hours takes
    the memory of one block."""
    raw = path.suffix.lower() == ".raw"
    options = {"samplerate": 16000, "channels": 1, "format": "RAW", "subtype": "PCM_16"} if raw else {}
    try:
        with sf.SoundFile(str(path), **options) as f:
            rate, channels = int(f.samplerate), int(f.channels)
            resampler = Resampler(rate, SAMPLE_RATE, 1)
            for block in f.blocks(blocksize=max(1, int(seconds * rate)), dtype="float32", always_2d=True):
                mono = block.mean(axis=1) if channels > 1 else block[:, 0]
                out = resampler.push(AudioFrame(_to_int16(mono), rate))
                if out.samples_per_channel:
                    yield out
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(
            f"{path}: not a readable audio file ({exc}); convert it to PCM WAV, e.g. `sox in.x -b 16 out.wav`"
        ) from exc


UNKNOWN_LENGTH = (0, 0xFFFFFFFF)
"""Data sizes a streaming writer leaves in a WAV header when it does not know the length: not a promise."""


def _missing_bytes(path: Path) -> int:
    """How many bytes of audio a RIFF/WAVE file's ``data`` chunk promises beyond the end of the file (0 when
    it keeps its promise, or is not a WAV)."""
    try:
        with path.open("rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return 0
            while chunk := f.read(8):
                if len(chunk) < 8:
                    return 0
                kind, size = chunk[:4], int(struct.unpack("<I", chunk[4:])[0])
                if kind == b"data":
                    if size in UNKNOWN_LENGTH:
                        return 0
                    there = path.stat().st_size - f.tell()
                    return max(0, size - there)
                f.seek(size + (size & 1), 1)  # chunks are padded to an even length
    except OSError:
        return 0
    return 0


def _to_int16(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] (louder ones clipped) as int16."""
    return to_int16(samples * 32768.0)


def write_wav(path: Path, frame: AudioFrame) -> None:
    """Write 16-bit PCM WAV, through a temporary file so a failed write leaves nothing half done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    data = frame.data.reshape(-1, frame.num_channels)
    sf.write(tmp, data, frame.sample_rate, subtype="PCM_16", format="WAV")
    tmp.replace(path)


def read_audio_bytes(data: bytes, name: str = "stdin", rate: int = SAMPLE_RATE) -> AudioFrame:
    """Audio handed over as bytes (``-`` on the command line reads stdin): a WAV or FLAC, resampled to ``rate``."""
    if not data:
        raise AudioError(f"{name} is empty; pipe a WAV file into it")
    try:
        samples, file_rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        samples = _to_int16(samples)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioError(f"{name}: not readable audio ({exc}); pipe a PCM WAV file into it") from exc
    if samples.shape[0] == 0:
        raise AudioError(f"{name} holds no audio samples; pipe a non-empty recording")
    return resample(AudioFrame(np.ascontiguousarray(samples).reshape(-1), int(file_rate), samples.shape[1]), rate)


def wav_bytes(frame: AudioFrame) -> bytes:
    """The frame as a 16-bit PCM WAV file's bytes (for ``-``: stdout)."""
    out = io.BytesIO()
    sf.write(out, frame.data.reshape(-1, frame.num_channels), frame.sample_rate, subtype="PCM_16", format="WAV")
    return out.getvalue()
