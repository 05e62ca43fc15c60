"""The microphone and the speaker the config names: present, and open at 16 kHz."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import sounddevice as sd

from appliance.audio.devices import Kind, close_stream, describe, find_device, open_stream
from appliance.audio.frame import SAMPLE_RATE
from appliance.audio.io import BLOCK_SECONDS
from appliance.config import AudioConfig
from appliance.doctor.result import CheckResult, Status, timed
from appliance.errors import AudioDeviceError

LISTEN_SECONDS = 0.5
"""How long the microphone is read (and the speaker fed silence) to see that audio flows."""
FIRST_BLOCK_TIMEOUT = 2.0


def device_checks(config: AudioConfig, *, service_active: bool = False) -> list[CheckResult]:
    """``service_active``: a running appliance may hold the devices, which makes a failed open expected."""
    return [
        timed("audio.input", lambda: _check("input", config.input_device, service_active)),
        timed("audio.output", lambda: _check("output", config.output_device, service_active)),
    ]


def _check(kind: Kind, spec: str | None, service_active: bool) -> CheckResult:
    name = f"audio.{kind}"
    key = f"audio.{kind}_device"
    try:
        index = find_device(spec, kind)
    except AudioDeviceError as exc:
        finding = str(exc).partition(";")[0]  # the rest of the message is the list of devices, in the fix
        there = describe(kind)
        if there == "none":
            fix = "connect one, and check that the sound server or driver sees it (pactl list short, aplay -l)"
            return CheckResult(name, Status.FAIL, f"{finding}: there is no {kind} device at all", fix)
        return CheckResult(name, Status.FAIL, finding, f"set {key} in the config to one of: {there}")
    info: dict[str, Any] = dict(sd.query_devices(index))
    label = f"{index} {info['name']!r}"
    default_rate = int(info["default_samplerate"])
    blocks: list[float] = []
    arrived = threading.Event()

    def on_input(indata: np.ndarray, frames: int, when: Any, status: Any) -> None:
        blocks.append(float(np.sqrt(np.mean(indata.astype(np.float32) ** 2))))
        arrived.set()

    def on_output(outdata: np.ndarray, frames: int, when: Any, status: Any) -> None:
        outdata.fill(0)  # silence: the check must not make a sound
        blocks.append(0.0)
        arrived.set()

    try:
        stream, rate = open_stream(
            kind, index, [SAMPLE_RATE, default_rate], BLOCK_SECONDS, on_input if kind == "input" else on_output
        )
    except AudioDeviceError as exc:
        if service_active:
            return CheckResult(
                name,
                Status.WARN,
                f"{label}: {exc} (the running appliance service may hold it)",
                "stop the service (sudo systemctl stop appliance) and run doctor again",
            )
        return CheckResult(name, Status.FAIL, f"{label}: {exc}", f"close what holds it, or set {key} to another device")
    try:
        flowing = arrived.wait(FIRST_BLOCK_TIMEOUT)
        time.sleep(LISTEN_SECONDS)
    finally:
        close_stream(stream)
    if not flowing:
        return CheckResult(
            name,
            Status.FAIL,
            f"{label} opened at {rate} Hz but no audio block came in {FIRST_BLOCK_TIMEOUT:.0f} s",
            "check the device's connection and the sound server (pactl info / arecord -l)",
        )
    detail = f"{label} opens at {rate} Hz"
    if kind == "input":
        loudest = max(blocks)
        if loudest == 0:
            return CheckResult(
                name,
                Status.WARN,
                f"{detail}, but hears digital silence: muted or unplugged?",
                "unmute the microphone (alsamixer, or the desktop's sound settings)",
            )
        detail += f", loudest block {20 * np.log10(loudest / 32768):.0f} dBFS"
    if rate != SAMPLE_RATE:
        return CheckResult(
            name,
            Status.WARN,
            f"{detail}, not at {SAMPLE_RATE} Hz: resampled in software",
            "fine as it is; a device that takes 16 kHz saves a little CPU",
        )
    return CheckResult(name, Status.OK, detail)
