"""The end of a stop that cannot wait: the turn in progress saved within a bound, then the process ends.

After the first SIGTERM (or SIGINT) the daemon stops gracefully on its event loop. Two things end that stop
early: a second signal, or the stop's own bound running out. Either one saves what it can of the turn in
progress (at most ``SAVE_BOUND``) and ends the process at once, from a thread of its own: the event loop may be
the thing that is stuck.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
SAVE_BOUND = 0.1
"""Seconds the turn in progress may take to reach the disk before the process ends without it."""
SIG_ERR = ctypes.c_void_p(-1).value


class HardStop:
    """Armed by the first stop signal: the next one, or ``bound`` seconds, runs ``save`` (given the seconds it
    may take; True if it saved everything) and ends the process."""

    def __init__(self, save: Callable[[float], bool]) -> None:
        self._save = save
        self._ending = threading.Lock()
        """Taken by whichever of the signal and the timer comes first, and never given back."""

    def arm(self, bound: float) -> None:
        """From the main thread (where ``signal.signal`` works), once.

        The signals go through a wakeup pipe to a waiting thread: Python's C-level handler writes the signal's
        number into it at once, whichever thread the kernel interrupts, whereas a Python-level handler runs
        only when the main thread next runs Python code."""
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for signum in STOP_SIGNALS:
            signal.signal(signum, _through_the_pipe)
        threading.Thread(target=self._wait_for_signal, args=(read_fd,), name="stop-signal", daemon=True).start()
        timer = threading.Timer(bound, self._bound_passed, args=(bound,))
        timer.name, timer.daemon = "stop-bound", True
        timer.start()

    def _wait_for_signal(self, read_fd: int) -> None:
        while data := os.read(read_fd, 16):
            for number in data:
                if number in STOP_SIGNALS:
                    self.end(signal.Signals(number))

    def _bound_passed(self, bound: float) -> None:
        logger.error("stop took longer than its bound: exiting now", extra={"seconds": bound})
        self.end(None)

    def end(self, signum: signal.Signals | None) -> NoReturn:
        """Save what ``save`` can within ``SAVE_BOUND``, then end the process: as ``signum`` would (None: exit
        status 1). From any thread."""
        self._ending.acquire()  # the other path waits here until the process is gone
        start = time.monotonic()
        try:
            saved = self._save(SAVE_BOUND)
        except Exception:  # the process ends now whatever went wrong; the failure is logged on the way out
            logger.exception("turn in progress not saved")
            saved = False
        name = signum.name if signum is not None else None
        took = round(time.monotonic() - start, 3)
        logger.warning("exiting now", extra={"signal": name, "turn_saved": saved, "seconds": took})
        if signum is not None:
            die_of(signum)
        os._exit(1)


def die_of(signum: signal.Signals) -> NoReturn:
    """End the process as the signal's default action does: systemd counts a death by SIGTERM as a clean stop,
    and a shell reads a death by SIGINT as Ctrl-C. ``signal.signal`` works on the main thread only, which may
    be stuck, so the default action is put back through libc; 128 + the signal's number if that fails."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.signal.restype = ctypes.c_void_p
        libc.signal.argtypes = (ctypes.c_int, ctypes.c_void_p)
        if libc.signal(int(signum), None) != SIG_ERR:  # None: SIG_DFL
            os.kill(os.getpid(), signum)
            time.sleep(1.0)  # the kernel ends every thread; this one only waits for it
    except (OSError, AttributeError) as exc:
        logger.error("default signal action not restored", extra={"error": str(exc)})
    os._exit(128 + int(signum))


def _through_the_pipe(signum: int, frame: FrameType | None) -> None:
    """Nothing: the wakeup pipe has already carried the signal to the thread that acts on it."""
