"""The output volume, 0..100: set through the sound server (``pactl``: PulseAudio, or PipeWire's pulse server)
when there is one, else the ALSA mixer (``amixer``), else a software gain the playback multiplies by.

The level is kept in ``volume.json`` in the state directory and applied again by ``restore()`` at start. A tool
that fails or hangs never fails the caller: it is logged (once, until it works again) and that change goes to
the software gain instead, so the user still hears the difference.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from appliance.utils.files import write_atomically

logger = logging.getLogger(__name__)

VOLUME_FILE = "volume.json"
STEP = 10
"""Levels per "louder" or "quieter"."""
TOOL_TIMEOUT = 2.0
"""Seconds ``pactl`` or ``amixer`` may take."""
UNMUTE_LEVEL = 50
"""The level "unmute" goes to when the level before the mute is not known."""
SINK = "@DEFAULT_SINK@"
_PREFERRED_CONTROLS = ("Master", "PCM", "Speaker", "Headphone")
_PERCENT = re.compile(r"(\d+)%")


class Backend(enum.StrEnum):
    PULSE = "pulse"
    ALSA = "alsa"
    SOFTWARE = "software"


class MixerToolError(Exception):
    """``pactl`` or ``amixer`` could not be run, failed or took too long."""


class Mixer:
    """The output volume; ``gain`` is what the playback multiplies samples by (1.0 unless the level could not
    be set on a device). ``restore()`` at start finds the tools; until then the level is only a gain."""

    def __init__(
        self,
        state_dir: Path,
        *,
        pactl: str | None = "pactl",
        amixer: str | None = "amixer",
        env: Mapping[str, str] | None = None,
        timeout: float = TOOL_TIMEOUT,
        step: int = STEP,
    ) -> None:
        """``pactl``, ``amixer``: the tools (None: do not use it); ``env``: their environment (default: ours)."""
        self.path = state_dir / VOLUME_FILE
        self.step = step
        self._pactl = pactl
        self._amixer = amixer
        self._env = dict(env) if env is not None else None
        self._timeout = timeout
        self._level = 100
        self._before_mute: int | None = None
        self._backends: list[Backend] = []
        """Where a level can go, the preferred first (found by ``restore()``)."""
        self._control = "Master"
        self._backend = Backend.SOFTWARE
        self._failing: set[Backend] = set()

    @property
    def level(self) -> int:
        return self._level

    @property
    def backend(self) -> Backend:
        """Where the level went the last time it was applied."""
        return self._backend

    @property
    def gain(self) -> float:
        """The factor for the samples: cubic in the level, as PulseAudio maps its percentages (50 is -18 dB)."""
        return (self._level / 100) ** 3 if self._backend is Backend.SOFTWARE else 1.0

    async def restore(self) -> int:
        """Find the tools, then apply the kept level (or, with none kept, take the device's own)."""
        self._backends = await self._find()
        kept = await asyncio.to_thread(self._load)
        if kept is None:
            self._level = await self._device_level()
        else:
            self._level, self._before_mute = kept
        await self._apply(self._level)
        logger.info("volume restored", extra={"level": self._level, "backend": str(self._backend)})
        return self._level

    async def set(self, level: int) -> int:
        """Set the level (clamped to 0..100) and keep it; the level now."""
        level = max(0, min(100, level))
        if level == 0 and self._level > 0:
            self._before_mute = self._level
        await self._apply(level)
        self._level = level
        await asyncio.to_thread(self._save)
        return level

    async def up(self) -> int:
        return await self.set(self._level + self.step)

    async def down(self) -> int:
        return await self.set(self._level - self.step)

    async def unmute(self) -> int:
        """Back to the level before the volume went to 0 (nothing changes if it is not 0)."""
        if self._level > 0:
            return self._level
        return await self.set(self._before_mute or UNMUTE_LEVEL)

    # -- the tools --------------------------------------------------------------------------------------------

    async def _find(self) -> list[Backend]:
        found = []
        if self._pactl is not None and shutil.which(self._pactl, path=self._path()) is not None:
            found.append(Backend.PULSE)
        if self._amixer is not None and shutil.which(self._amixer, path=self._path()) is not None:
            try:
                control = playback_control(await self._run(self._amixer, "scontents"))
            except MixerToolError as exc:
                self._failed(Backend.ALSA, exc)
                control = None
            if control is not None:
                self._control = control
                found.append(Backend.ALSA)
        return found

    async def _device_level(self) -> int:
        for backend in self._backends:
            try:
                if backend is Backend.PULSE:
                    out = await self._run(str(self._pactl), "get-sink-volume", SINK)
                else:
                    out = await self._run(str(self._amixer), "-M", "sget", self._control)
            except MixerToolError as exc:
                self._failed(backend, exc)
                continue
            if found := _PERCENT.search(out):
                return max(0, min(100, int(found.group(1))))
        return self._level

    async def _apply(self, level: int) -> None:
        for backend in self._backends:
            try:
                if backend is Backend.PULSE:
                    await self._run(str(self._pactl), "set-sink-volume", SINK, f"{level}%")
                else:
                    await self._run(str(self._amixer), "-q", "-M", "sset", self._control, f"{level}%")
            except MixerToolError as exc:
                self._failed(backend, exc)
                continue
            if backend in self._failing:
                self._failing.discard(backend)
                logger.info("volume: the mixer works again", extra={"backend": str(backend)})
            self._backend = backend
            return
        self._backend = Backend.SOFTWARE

    def _failed(self, backend: Backend, exc: MixerToolError) -> None:
        if backend not in self._failing:
            self._failing.add(backend)
            logger.warning(
                "volume: the mixer failed, the software gain stands in",
                extra={"backend": str(backend), "error": str(exc)},
            )

    async def _run(self, *args: str) -> str:
        try:
            proc = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=self._env
            )
        except OSError as exc:
            raise MixerToolError(f"{args[0]} cannot be run ({exc})") from exc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), self._timeout)
        except TimeoutError as exc:
            raise MixerToolError(f"{' '.join(args)} took over {self._timeout:g} s") from exc
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            said = err.decode(errors="replace").strip()[:200]
            raise MixerToolError(f"{' '.join(args)} failed (exit {proc.returncode}): {said}")
        return out.decode(errors="replace")

    def _path(self) -> str | None:
        return self._env.get("PATH") if self._env is not None else None

    # -- the kept level ---------------------------------------------------------------------------------------

    def _load(self) -> tuple[int, int | None] | None:
        """(level, level before the mute) as kept, or None."""
        try:
            doc = json.loads(self.path.read_text())
            level, before = int(doc["level"]), doc.get("before_mute")
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning(
                "volume: the kept level is unreadable, not used", extra={"path": str(self.path), "error": str(exc)}
            )
            return None
        return max(0, min(100, level)), before if isinstance(before, int) and 0 < before <= 100 else None

    def _save(self) -> None:
        doc = {"level": self._level, "before_mute": self._before_mute}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            write_atomically(self.path, json.dumps(doc) + "\n", 0o600)
        except OSError as exc:  # the level holds until the restart, it is only not kept
            logger.error("volume: the level could not be kept", extra={"path": str(self.path), "error": str(exc)})


def playback_control(scontents: str) -> str | None:
    """The ALSA control to set, from ``amixer scontents``: Master (or PCM, Speaker, Headphone) if it has a
    playback volume, else the first control that has one."""
    blocks = re.findall(r"^Simple mixer control '([^']+)',(\d+)\n((?:[ \t].*(?:\n|$))*)", scontents, re.MULTILINE)
    playback = [
        name if index == "0" else f"{name},{index}"
        for name, index, body in blocks
        if re.search(r"Capabilities:.*\b(?:pvolume|volume)\b", body)
    ]
    for name in _PREFERRED_CONTROLS:
        if name in playback:
            return name
    return playback[0] if playback else None
