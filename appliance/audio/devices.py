"""Finding sound devices by name or index, the streams we have open, and the backoff used while one is away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeAlias

import sounddevice as sd

from appliance.errors import AudioDeviceError
from appliance.utils.backoff import Backoff

logger = logging.getLogger(__name__)

Kind = Literal["input", "output"]
DeviceSpec = str | int | None
"""A device by index, by (part of) its name, or None for the system default."""
Stream: TypeAlias = sd.InputStream | sd.OutputStream

OPEN_TIMEOUT = 10.0
"""Seconds one attempt to reopen a device may take (a hung sound server) before it counts as failed."""

_device_lock = threading.RLock()
"""Held while a stream is opened and while PortAudio is re-initialised: a re-scan must never pull the library
out from under an open that is half done. Taken only off the event loop, or with a bound (``open_stream``)."""
_registry_lock = threading.Lock()
"""Guards ``_open_streams`` only; never held across a PortAudio call, so closing never waits for an open."""
_open_streams: set[Stream] = set()
"""The streams our code has open (``open_stream`` adds, ``close_stream`` removes)."""
_skip_logged = False


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


def refresh_devices() -> bool:
    """Re-scan the sound devices, so a USB device plugged back in gets its new PortAudio entry; True if it did.

    PortAudio only re-scans by terminating and re-initialising, which closes every stream of the process. So
    the re-scan happens only while no other stream of ours is open: re-scanning for the speaker must not kill
    a healthy microphone, nor the reverse. Otherwise it is skipped (the caller just retries the open). Little
    is lost: behind a sound server (PulseAudio, PipeWire) PortAudio's device list is the server's fixed
    'pulse'/'default' entries, which never change with what is plugged in. Only on bare ALSA would a re-plugged
    USB device stay unfound while its partner stream is open; then the watchdog's device grace
    (``DEVICE_GRACE`` in ``appliance.service.daemon``) ends and systemd restarts the service, which scans afresh.
    """
    global _skip_logged
    with _device_lock:
        with _registry_lock:
            busy = len(_open_streams)
        if busy:
            if not _skip_logged:
                _skip_logged = True
                logger.info("device re-scan skipped: other streams are open", extra={"open_streams": busy})
            else:
                logger.debug("device re-scan skipped: other streams are open", extra={"open_streams": busy})
            return False
        sd._terminate()
        sd._initialize()
        _skip_logged = False
        return True


def open_stream(
    kind: Kind, index: int, rates: list[int], block_seconds: float, callback: Callable[..., None]
) -> tuple[Stream, int]:
    """A started mono int16 stream at the first of ``rates`` the device takes, and that rate.

    The stream is registered as ours until ``close_stream`` (see ``refresh_devices``). The device lock is
    waited for at most ``OPEN_TIMEOUT``: a caller on the event loop is not held forever by a hung open in a
    worker thread.
    """
    what = "microphone" if kind == "input" else "speaker"
    if not _device_lock.acquire(timeout=OPEN_TIMEOUT):
        raise AudioDeviceError(f"cannot open the {what}: another sound device call has hung; is the sound server up?")
    try:
        name = str(sd.query_devices(index)["name"])
        last: Exception | None = None
        factory = sd.InputStream if kind == "input" else sd.OutputStream
        for rate in dict.fromkeys(rates):
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
            except (sd.PortAudioError, ValueError) as exc:
                last = exc
                continue
            try:
                stream.start()
            except (sd.PortAudioError, ValueError) as exc:
                last = exc
                with contextlib.suppress(sd.PortAudioError):
                    stream.close()  # not started, but open: it would hold the device
                continue
            with _registry_lock:
                _open_streams.add(stream)
            return stream, rate
        raise AudioDeviceError(f"cannot open {what} {name!r}: {last}; check that no other program holds it")
    finally:
        _device_lock.release()


def close_stream(stream: Stream | None) -> None:
    """Stop and close one of our streams; it no longer counts as open, even if PortAudio reports an error.
    It counts as open until it is closed, so a re-scan never terminates PortAudio under a close under way."""
    if stream is not None:
        try:
            with contextlib.suppress(sd.PortAudioError):
                stream.abort()
                stream.close()
        finally:
            with _registry_lock:
                _open_streams.discard(stream)


def _open_or_refresh(open_device: Callable[[], None]) -> None:
    """One reopen attempt, in a worker thread: open; failing that, re-scan (if allowed) and open again."""
    with _device_lock:
        try:
            open_device()
        except AudioDeviceError:
            refresh_devices()  # a USB device plugged back in gets a new PortAudio entry
            open_device()


PROBE_INTERVAL = 0.25
"""Seconds between looks, while a device is away, at whether its sound server or sound card is back."""


def _sound_server_socket() -> str | None:
    """The PulseAudio (or PipeWire's pulse) socket PortAudio's pulse and default devices reach, if any."""
    server = os.environ.get("PULSE_SERVER", "")
    if server.startswith("unix:"):
        return server[len("unix:") :]
    if server.startswith("/"):
        return server
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(runtime, "pulse", "native") if runtime and not server else None


def sound_presence() -> tuple[bool, tuple[str, ...]]:
    """What changes when a sound server or a sound card comes back: whether the sound server's socket takes a
    connection, and the ALSA device nodes (a USB card plugged back in adds its own). Cheap: no PortAudio."""
    accepts = False
    path = _sound_server_socket()
    if path is not None:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(0.05)
            probe.connect(path)
            accepts = True
    try:
        nodes = tuple(sorted(os.listdir("/dev/snd")))
    except OSError:
        nodes = ()
    return accepts, nodes


async def _wait_unless_back(seconds: float, away: tuple[bool, tuple[str, ...]]) -> bool:
    """Sleep ``seconds``, or less if what was there when the device went ``away`` changes (True then)."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(PROBE_INTERVAL, left))
        if await asyncio.to_thread(sound_presence) != away:
            return True
    return False


def _forget(attempt: asyncio.Future[None], discard: Callable[[], None] | None) -> None:
    """An attempt nobody waits for any more: its error is dropped; a device it opened after all is closed."""
    if attempt.cancelled():
        return
    if attempt.exception() is None and discard is not None:
        discard()


async def reopen(
    open_device: Callable[[], None],
    backoff: Backoff,
    what: str,
    closed: Callable[[], bool],
    *,
    attempt_seconds: float = OPEN_TIMEOUT,
    discard: Callable[[], None] | None = None,
) -> bool:
    """Try ``open_device`` after growing waits until it works (True) or the owner closes (False).

    ``open_device`` blocks (PortAudio, and a sound server that may hang), so each attempt runs in a worker
    thread and the loop goes on serving the other device. An attempt that takes over ``attempt_seconds`` counts as
    failed and is waited for again after the next backoff, not replaced while it hangs (the thread cannot be
    stopped, and piling them up would exhaust the executor); one that ends late is taken as it ended. If the
    owner gives up on an attempt that later succeeds after all, ``discard`` closes what it opened.
    """
    attempt: asyncio.Future[None] | None = None
    failures = 0
    away = await asyncio.to_thread(sound_presence)
    try:
        while not closed():
            # the waits grow while nothing changes; the sound server or card coming back cuts them short, so
            # a long outage is over within a probe or two of its end, not at the next of waits up to 30 s
            if await _wait_unless_back(backoff.next(), away):
                logger.info("sound device may be back: retrying now", extra={"device": what})
                backoff.reset()
                away = await asyncio.to_thread(sound_presence)
            if attempt is None:
                attempt = asyncio.ensure_future(asyncio.to_thread(_open_or_refresh, open_device))
            try:
                await asyncio.wait_for(asyncio.shield(attempt), attempt_seconds)
            except AudioDeviceError as exc:
                attempt = None
                # one line per outage (the owner has already said the device went away); the rest at debug
                log = logger.debug if failures else logger.warning
                failures += 1
                log("sound device still unavailable", extra={"device": what, "error": str(exc), "tries": failures})
                continue
            except TimeoutError:
                logger.warning("sound device open hung", extra={"device": what, "seconds": attempt_seconds})
                continue
            attempt = None
            backoff.reset()
            if failures:
                logger.info("sound device back", extra={"device": what, "tries": failures + 1})
            return True
        return False
    finally:
        if attempt is not None:
            attempt.add_done_callback(lambda done: _forget(done, discard))
