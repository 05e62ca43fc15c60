import shutil
from pathlib import Path

import pytest

from appliance.engines import Models
from appliance.errors import ConfigError, ModelError
from appliance.models.fetch import fetch_model
from appliance.models.manifest import load_manifest, select
from appliance.models.store import ModelStore, Status


def copy_store(models: Models, tmp_path: Path, name: str) -> ModelStore:
    spec = models.specs[name]
    store = ModelStore(tmp_path)
    store.path(spec).parent.mkdir(parents=True)
    shutil.copy(models.path(name), store.path(spec))
    return store


def test_manifest_lists_the_embedded_defaults_with_licences(models: Models) -> None:
    defaults = {s.name: s for s in select(models.specs)}
    for name in (
        "hey_jarvis",
        "silero_vad",
        "whisper-tiny.en",
        "qwen2.5-coder-1.5b-instruct",
        "piper-en_US-joe-medium",
    ):
        assert name in defaults
        assert len(defaults[name].sha256) == 64 and defaults[name].license and defaults[name].sources
    assert "non-commercial" in defaults["hey_jarvis"].license
    # every model has an offline source from the package index
    assert all(any(s.kind != "url" for s in spec.sources) for spec in models.specs.values())


def test_truncated_model_gives_an_error_naming_the_file_and_the_fix(models: Models, tmp_path: Path) -> None:
    store = copy_store(models, tmp_path, "silero_vad")
    spec = models.specs["silero_vad"]
    data = store.path(spec).read_bytes()
    store.path(spec).write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError) as err:
        store.require(spec)
    assert str(store.path(spec)) in str(err.value)
    assert "appliance-cli models fetch" in str(err.value)


def test_flipped_byte_is_caught_even_after_a_good_verification(models: Models, tmp_path: Path) -> None:
    store = copy_store(models, tmp_path, "hey_jarvis")
    spec = models.specs["hey_jarvis"]
    assert store.require(spec) == store.path(spec)
    raw = bytearray(store.path(spec).read_bytes())
    raw[1000] ^= 0xFF
    store.path(spec).write_bytes(raw)  # rewriting changes mtime: the stamp no longer vouches for it
    assert store.check(spec).status is Status.CORRUPT
    with pytest.raises(ModelError, match="corrupted"):
        store.require(spec)


def test_missing_model_says_how_to_fetch_it(models: Models, tmp_path: Path) -> None:
    spec = models.specs["alexa"]
    with pytest.raises(ModelError, match="models fetch --name alexa"):
        ModelStore(tmp_path).require(spec)


def test_fetch_repairs_a_corrupted_file_from_the_package_index(models: Models, tmp_path: Path) -> None:
    store = copy_store(models, tmp_path, "okay_nabu")
    spec = models.specs["okay_nabu"]
    store.path(spec).write_bytes(b"garbage")
    messages: list[str] = []
    fetch_model(store, spec, quiet=True, report=messages.append)
    assert store.check(spec).status is Status.OK
    messages.clear()
    fetch_model(store, spec, quiet=True, report=messages.append)  # second time: nothing to do
    assert messages == ["okay_nabu: present, sha256 verified"]


def test_unknown_role_in_manifest_is_rejected(tmp_path: Path) -> None:
    bad = tmp_path / "m.toml"
    bad.write_text('[[model]]\nname="x"\nrole="camera"\nfile="x"\nsize=1\nsha256="0"\nlicense="MIT"\nsources=[]\n')
    with pytest.raises(ConfigError, match="role 'camera'"):
        load_manifest(bad)


def test_bit_rot_under_an_unchanged_size_and_mtime_is_found_by_a_full_check_which_drops_the_stamp(
    models: Models, tmp_path: Path
) -> None:
    import os

    store = copy_store(models, tmp_path, "hey_jarvis")
    spec = models.specs["hey_jarvis"]
    assert store.require(spec)  # hashed once, stamped
    path = store.path(spec)
    before = path.stat()
    raw = bytearray(path.read_bytes())
    raw[5000] ^= 0x01
    path.write_bytes(raw)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # a card going bad changes no metadata
    assert store.require(spec) == path  # the stamp cannot see it
    assert store.check(spec).status is Status.CORRUPT  # a full check (verify, doctor, the daemon's watch) can
    with pytest.raises(ModelError, match="corrupted"):
        store.require(spec)  # and the next load hashes the file again


def test_the_daemons_model_watch_reports_a_file_that_changed_on_disk(models: Models, tmp_path: Path) -> None:
    import asyncio

    from appliance.models.watch import check_once

    store = copy_store(models, tmp_path, "okay_nabu")
    spec = models.specs["okay_nabu"]
    reported: list[ModelError] = []
    assert asyncio.run(check_once(store, [spec], reported.append)) == 0 and not reported
    raw = bytearray(store.path(spec).read_bytes())
    raw[100] ^= 0xFF
    store.path(spec).write_bytes(raw)
    assert asyncio.run(check_once(store, [spec], reported.append)) == 1
    assert len(reported) == 1 and "models fetch --name okay_nabu" in str(reported[0])
