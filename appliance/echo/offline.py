"""Echo cancellation over a whole recording, and how much it took out: for calibrate, the bench and tests."""

from __future__ import annotations

from typing import Any

import numpy as np

from appliance.audio.frame import SAMPLE_RATE, AudioFrame
from appliance.echo.base import BLOCK, EchoCanceller
from appliance.echo.input import LEAD

CONVERGED_DB = 20.0
"""ERLE over a window at which the canceller counts as converged."""
LOUD_DB = 20.0
"""Windows within this many dB of the loudest echo count (the speaker playing, not a pause)."""


def cancel_recording(
    recording: AudioFrame, reference: AudioFrame, delay: float, canceller: EchoCanceller | None = None
) -> AudioFrame:
    """``recording`` with the echo of ``reference`` taken out, as the daemon's input would: the reference
    read ``delay`` (the measured path) less the canceller's lead earlier. Both 16 kHz, on one time line."""
    if canceller is None:
        from appliance.echo.webrtc import WebRTCEchoCanceller

        canceller = WebRTCEchoCanceller()
    canceller.set_delay(LEAD)
    shift = round((delay - LEAD) * SAMPLE_RATE)
    far = reference.data
    far = (
        np.concatenate([np.zeros(shift, np.int16), far])[: far.size]
        if shift >= 0
        else np.concatenate([far[-shift:], np.zeros(-shift, np.int16)])
    )
    near = recording.data
    out = np.zeros(near.size - near.size % BLOCK, np.int16)
    try:
        for i in range(0, out.size, BLOCK):
            out[i : i + BLOCK] = canceller.process(near[i : i + BLOCK], far[i : i + BLOCK])
    finally:
        canceller.close()
    return AudioFrame(out, SAMPLE_RATE)


def echo_figures(before: np.ndarray, after: np.ndarray, window: float = 0.5) -> dict[str, Any]:
    """ERLE per ``window`` while the echo is loud; its median over the second half (after convergence),
    and how long from the first loud window until one reached :data:`CONVERGED_DB`."""
    step = int(window * SAMPLE_RATE)
    n = min(before.size, after.size) // step
    if not n:
        return {"erle_db_after_convergence": None, "converged_after_seconds": None, "erle_db_windows": []}
    p_in, p_out = _powers(before[: n * step], step), _powers(after[: n * step], step)
    loud = p_in > p_in.max() * 10 ** (-LOUD_DB / 10)
    erle = [float(10 * np.log10(i / max(o, 1e-3))) for i, o, on in zip(p_in, p_out, loud, strict=True) if on]
    times = [k * window for k in np.flatnonzero(loud)]
    converged = next((t - times[0] for t, e in zip(times, erle, strict=True) if e >= CONVERGED_DB), None)
    late = erle[len(erle) // 2 :]
    return {
        "erle_db_after_convergence": round(float(np.median(late)), 1),
        "erle_db_min_after_convergence": round(float(np.min(late)), 1),
        "converged_after_seconds": converged,
        "erle_db_windows": [round(e, 1) for e in erle],
    }


def _powers(x: np.ndarray, step: int) -> np.ndarray:
    blocks = x.astype(np.float64).reshape(-1, step)
    return np.asarray(np.mean(blocks * blocks, axis=1))
