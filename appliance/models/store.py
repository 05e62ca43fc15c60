"""Where models live on disk, and checking that what is there is what the manifest promises."""

from __future__ import annotations

import enum
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from appliance.errors import ModelError
from appliance.models.manifest import ModelSpec
from appliance.utils.files import write_atomically

logger = logging.getLogger(__name__)

SERVICE_MODELS_DIR = Path("/var/lib/appliance/models")
_CHUNK = 1 << 20


def default_models_dir() -> Path:
    """``$APPLIANCE_MODELS_DIR``, else the user's data directory."""
    env = os.environ.get("APPLIANCE_MODELS_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_data_dir("appliance")) / "models"


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class Status(enum.StrEnum):
    """What `models verify` finds for one model."""

    OK = "ok"
    MISSING = "missing"
    CORRUPT = "corrupt"


@dataclass(frozen=True)
class Check:
    spec: ModelSpec
    path: Path
    status: Status
    detail: str = ""


class ModelStore:
    """The models directory: ``<dir>/<role>/<file>``, plus a record of upstream downloads."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_models_dir()

    def path(self, spec: ModelSpec) -> Path:
        return self.root / spec.file

    def _record_path(self, spec: ModelSpec) -> Path:
        return self.path(spec).with_name(self.path(spec).name + ".source.json")

    def accepted_hashes(self, spec: ModelSpec) -> set[str]:
        """The manifest's hash, and that of an upstream file checked at download by its own checksum."""
        hashes = {spec.sha256}
        record = self._record_path(spec)
        if record.is_file():
            hashes.add(json.loads(record.read_text(encoding="utf-8"))["sha256"])
        return hashes

    def record_download(self, spec: ModelSpec, sha256: str, source: str) -> None:
        self._record_path(spec).write_text(json.dumps({"sha256": sha256, "source": source}), encoding="utf-8")

    def forget_download(self, spec: ModelSpec) -> None:
        self._record_path(spec).unlink(missing_ok=True)

    def check(self, spec: ModelSpec, *, full: bool = True) -> Check:
        """Is the file there, and (``full``) does its sha256 match?"""
        path = self.path(spec)
        if not path.is_file():
            return Check(spec, path, Status.MISSING, "not fetched")
        if not full:
            return Check(spec, path, Status.OK, "present")
        digest = file_digest(path)
        if digest not in self.accepted_hashes(spec):
            size = path.stat().st_size
            self.forget_verified(spec)  # bytes changed under an unchanged size and mtime: the stamp lied
            return Check(spec, path, Status.CORRUPT, f"sha256 {digest[:12]}… does not match ({size} bytes)")
        return Check(spec, path, Status.OK, "sha256 verified")

    def _stamp_path(self) -> Path:
        return self.root / ".verified.json"

    def _stamps(self) -> dict[str, list[int]]:
        try:
            data: dict[str, list[int]] = json.loads(self._stamp_path().read_text(encoding="utf-8"))
            return data
        except (FileNotFoundError, ValueError):
            return {}

    def _stamp_key(self, path: Path) -> list[int]:
        st = path.stat()
        return [st.st_size, st.st_mtime_ns]

    def mark_verified(self, spec: ModelSpec) -> None:
        """Remember size and mtime of a file whose hash was just checked."""
        stamps = self._stamps()
        stamps[spec.file] = self._stamp_key(self.path(spec))
        try:
            write_atomically(self._stamp_path(), json.dumps(stamps), 0o644)
        except OSError as exc:  # a read-only models dir still works; files are hashed on every load
            logger.info("cannot record model verification", extra={"dir": str(self.root), "error": str(exc)})

    def forget_verified(self, spec: ModelSpec) -> None:
        """The next load hashes the file again (it was found corrupted)."""
        stamps = self._stamps()
        if stamps.pop(spec.file, None) is None:
            return
        try:
            write_atomically(self._stamp_path(), json.dumps(stamps), 0o644)
        except OSError as exc:
            logger.info("cannot record model verification", extra={"dir": str(self.root), "error": str(exc)})

    def require(self, spec: ModelSpec) -> Path:
        """The model's path, or a one-line error saying how to get a good copy.

        The full sha256 is computed once per change of the file (size or mtime); loads after that
        compare the stamp only, so an engine starts without re-reading 100 MB.
        """
        path = self.path(spec)
        if path.is_file() and self._stamps().get(spec.file) == self._stamp_key(path):
            return path
        result = self.check(spec)
        if result.status is Status.MISSING:
            raise ModelError(
                f"model {spec.name} is missing at {result.path}; run `appliance-cli models fetch --name {spec.name}`"
            )
        if result.status is Status.CORRUPT:
            raise ModelError(
                f"model file {result.path} is corrupted or truncated ({result.detail}); "
                f"run `appliance-cli models fetch --name {spec.name}`"
            )
        self.mark_verified(spec)
        return result.path
