"""Finding sound devices by name or index, and the backoff used while one is away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal

import sounddevice as sd

from appliance.errors import AudioDeviceError

logger = logging.getLogger(__name__)

Kind = Literal["input", "output"]
DeviceSpec = str | int | None
"""A device by index, by (part of) its name, or None for the system default."""

_reinit_lock = threading.Lock()


def _channels(info: dict[str, Any], kind: Kind) -> int:
    return int(info["max_input_channels" if kind == "input" else "max_output_channels"])


def list_devices(kind: Kind) -> list[tuple[int, str]]:
    return [(i, str(d["name"])) for i, d in enumerate(sd.query_devices()) if _channels(d, kind) > 0]


def describe(kind: Kind) -> str:
    found = list_devices(kind)
    return ", ".join(f"{i} {name!r}" for i, name in found) if found else "none"


def find_device(spec: DeviceSpec, kind: Kind) -> int:
    """The PortAudio index for ``spec``, or an error that lists what is there."""
    hint = f"set the {kind} device to one of: {describe(kind)}"
    if spec is None or spec == "":
        try:
            default = sd.query_devices(kind=kind)
        except sd.PortAudioError as exc:
            raise AudioDeviceError(f"no default {kind} sound device ({exc}); {hint}") from exc
        return int(default["index"])
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        index = int(spec)
        devices = sd.query_devices()
        if index < 0 or index >= len(devices) or _channels(devices[index], kind) == 0:
            raise AudioDeviceError(f"sound device {index} is not an {kind} device; {hint}")
        return index
    matches = [(i, name) for i, name in list_devices(kind) if name == spec]
    if not matches:
        matches = [(i, name) for i, name in list_devices(kind) if spec.lower() in name.lower()]
    if not matches:
        raise AudioDeviceError(f"no {kind} sound device matches {spec!r}; {hint}")
    return matches[0][0]


def refresh_devices() -> None:
    """Re-scan the sound devices, so one plugged in after start can be found (closes open streams)."""
    with _reinit_lock:
        sd._terminate()
        sd._initialize()


class Backoff:
    """Waits that double after each failure, up to a ceiling, and start over after a success."""

    def __init__(self, initial: float = 0.5, ceiling: float = 30.0) -> None:
        self.initial, self.ceiling = initial, ceiling
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.ceiling)
        return delay

    def reset(self) -> None:
        self._next = self.initial


def open_stream(
    kind: Kind, index: int, rates: list[int], block_seconds: float, callback: Callable[..., None]
) -> tuple[sd.InputStream | sd.OutputStream, int]:
    """A started mono int16 stream at the first of ``rates`` the device takes, and that rate."""
    name = str(sd.query_devices(index)["name"])
    last: Exception | None = None
    for rate in dict.fromkeys(rates):
        factory = sd.InputStream if kind == "input" else sd.OutputStream
        try:
            stream = factory(
                device=index,
                samplerate=rate,
                channels=1,
                dtype="int16",
                blocksize=int(rate * block_seconds),
                latency="low",
                callback=callback,
            )
            stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            last = exc
            continue
        return stream, rate
    what = "microphone" if kind == "input" else "speaker"
    raise AudioDeviceError(f"cannot open {what} {name!r}: {last}; check that no other program holds it")


def close_stream(stream: sd.InputStream | sd.OutputStream | None) -> None:
    if stream is not None:
        with contextlib.suppress(sd.PortAudioError):
            stream.abort()
            stream.close()


async def reopen(open_device: Callable[[], None], backoff: Backoff, what: str, closed: Callable[[], bool]) -> bool:
    """Try ``open_device`` after growing waits until it works (True) or the owner closes (False)."""
    while not closed():
        delay = backoff.next()
        await asyncio.sleep(delay)
        try:
            try:
                open_device()
            except AudioDeviceError:
                refresh_devices()  # a USB device plugged back in gets a new PortAudio entry
                open_device()
        except AudioDeviceError as exc:
            logger.warning("sound device still unavailable", extra={"device": what, "error": str(exc)})
            continue
        backoff.reset()
        return True
    return False
