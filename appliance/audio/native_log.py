"""What PortAudio and ALSA print to the process's stderr, kept out of the service's log.

Both libraries write straight to file descriptor 2: PortAudio a line for every failed step of an open
("Expression 'AlsaOpen(...)' failed in 'src/hostapi/alsa/pa_linux_alsa.c', line: 1904"), ALSA one for every
refused connection, about twenty lines per sound-server outage under systemd, where the appliance's own log
already says what happened in one line per change (the device went away, is still away, is back). Neither
library lets its printing be redirected (Debian's PortAudio does not export its debug-print hook), so fd 2
becomes a pipe read by a thread: those libraries' lines go to the log at debug level, anything else goes on
to the real stderr unchanged. Python's own ``sys.stderr`` (the log handler, tracebacks) and ``faulthandler``
write to the real stderr directly, so a crash is never held up in the pipe.
"""

from __future__ import annotations

import faulthandler
import logging
import os
import re
import sys
import threading

logger = logging.getLogger(__name__)

NATIVE_LINE = re.compile(
    rb"^(?:Expression '.*' failed in 'src/|ALSA lib |PaAlsa|PaUnixThread|Cannot connect to server socket"
    rb"|jack server is not running|JackShmReadWritePtr|Assertion '.*' failed at .*pa_)"
)
"""Lines PortAudio (with its ALSA, JACK and PulseAudio paths) and ALSA print by themselves."""

_installed: NativeLog | None = None


class NativeLog:
    """The pipe behind fd 2 and the thread that sorts its lines (see the module's docstring)."""

    def __init__(self) -> None:
        self.real_stderr = os.dup(2)
        read, write = os.pipe()
        os.dup2(write, 2)
        os.close(write)
        self._read = read
        self.native_lines = 0
        self.thread = threading.Thread(target=self._pump, name="native-stderr", daemon=True)
        self.thread.start()

    def _pump(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._read, 65536)
            except OSError:
                return
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._line(line)
        if pending:
            self._line(pending)

    def _line(self, line: bytes) -> None:
        if NATIVE_LINE.match(line):
            self.native_lines += 1
            logger.debug("audio library: %s", line.decode("utf-8", "replace"))
            return
        try:
            os.write(self.real_stderr, line + b"\n")
        except OSError:
            pass


def quiet_native_audio_logs() -> NativeLog:
    """Route fd 2 through :class:`NativeLog` (once per process); ``sys.stderr`` now writes to the real stderr."""
    global _installed
    if _installed is None:
        sys.stderr.flush()
        _installed = NativeLog()
        sys.stderr = open(os.dup(_installed.real_stderr), "w", buffering=1, encoding="utf-8", errors="backslashreplace")
        if faulthandler.is_enabled():
            faulthandler.enable(sys.stderr)
    return _installed
