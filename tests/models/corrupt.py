"""Model files gone bad the way a failing SD card spoils them: the bytes of one tensor's weights changed, the
file's size and mtime kept, so the verification stamp still vouches for it and the engine gets to load it.

The tensors are found by reading each format's own index (whisper.cpp's ggml, llama.cpp's GGUF, ONNX's
protobuf), so the damage lands in weights, not in a header the loader would refuse at once.
"""

from __future__ import annotations

import os
import shutil
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

from appliance.engines import Models


def copy_verified(models: Models, root: Path, *names: str) -> Models:
    """A models directory at ``root`` with copies of ``names``, each hashed once and stamped as verified."""
    copy = Models(root)
    for name in names:
        target = copy.store.path(copy.spec(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(models.path(name), target)
        copy.path(name)
    return copy


def rot(path: Path, span: tuple[int, int], fill: int | None = None) -> None:
    """Every bit of the ``(offset, length)`` span flipped (or every byte set to ``fill``); size and mtime kept."""
    offset, length = span
    before = path.stat()
    with path.open("r+b") as f:
        f.seek(offset)
        data = np.frombuffer(f.read(length), np.uint8)
        f.seek(offset)
        f.write((np.full_like(data, fill) if fill is not None else data ^ 0xFF).tobytes())
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _read(f: BinaryIO, fmt: str) -> tuple[int, ...]:
    return struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))


def ggml_tensor(path: Path, name: str) -> tuple[int, int]:
    """(offset, length) of a tensor's data in a whisper.cpp ggml file (f32 and f16 tensors)."""
    with path.open("rb") as f:
        assert _read(f, "I")[0] == 0x67676D6C, "not a ggml file"
        f.seek(11 * 4, os.SEEK_CUR)  # hyperparameters
        n_mel, n_fft = _read(f, "ii")
        f.seek(4 * n_mel * n_fft, os.SEEK_CUR)
        for _ in range(_read(f, "i")[0]):  # the vocabulary
            f.seek(_read(f, "I")[0], os.SEEK_CUR)
        while head := f.read(12):
            dims, length, kind = struct.unpack("<iii", head)
            count = int(np.prod(_read(f, f"{dims}i")))
            found = f.read(length).decode()
            size = count * {0: 4, 1: 2}[kind]
            if found == name:
                return f.tell(), size
            f.seek(size, os.SEEK_CUR)
    raise KeyError(name)


_GGUF_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def gguf_tensor(path: Path, name: str) -> tuple[int, int]:
    """(offset, length) of a tensor's data in a GGUF file (up to the next tensor's data)."""

    def string(f: BinaryIO) -> str:
        return f.read(_read(f, "Q")[0]).decode("utf-8", errors="replace")

    def value(f: BinaryIO, kind: int) -> object:
        if kind == 8:
            return string(f)
        if kind == 9:
            item, count = _read(f, "I")[0], _read(f, "Q")[0]
            return [value(f, item) for _ in range(count)]
        return _read(f, _GGUF_SCALARS[kind])[0]

    with path.open("rb") as f:
        assert f.read(4) == b"GGUF", "not a GGUF file"
        _read(f, "I")  # version
        tensors, keys = _read(f, "QQ")
        meta = {string(f): value(f, _read(f, "I")[0]) for _ in range(keys)}
        offsets: dict[str, int] = {}
        for _ in range(tensors):
            found = string(f)
            f.seek(8 * _read(f, "I")[0] + 4, os.SEEK_CUR)  # dimensions, type
            offsets[found] = _read(f, "Q")[0]
        align = meta.get("general.alignment", 32)
        assert isinstance(align, int)
        start = (f.tell() + align - 1) // align * align
    ends = [*sorted(offsets.values()), path.stat().st_size - start]
    offset = offsets[name]
    return start + offset, next(e for e in ends if e > offset) - offset


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(field number, start, end) of each length-delimited protobuf field in ``buf[start:end]``."""

    def varint(i: int) -> tuple[int, int]:
        out = shift = 0
        while True:
            out |= (buf[i] & 0x7F) << shift
            shift += 7
            i += 1
            if buf[i - 1] < 0x80:
                return out, i

    i = start
    while i < end:
        key, i = varint(i)
        wire = key & 7
        if wire == 0:
            _, i = varint(i)
        elif wire in (1, 5):
            i += 8 if wire == 1 else 4
        elif wire == 2:
            length, i = varint(i)
            yield key >> 3, i, i + length
            i += length
        else:
            raise ValueError(f"protobuf wire type {wire}")


def onnx_initializer(path: Path, name: str) -> tuple[int, int]:
    """(offset, length) of an ONNX initializer's raw data (ModelProto.graph = 7, GraphProto.initializer = 5,
    TensorProto.name = 8, TensorProto.raw_data = 9)."""
    buf = path.read_bytes()
    for number, start, end in _fields(buf, 0, len(buf)):
        if number != 7:
            continue
        for inner, first, last in _fields(buf, start, end):
            if inner != 5:
                continue
            parts = {n: (a, b) for n, a, b in _fields(buf, first, last)}
            if 8 in parts and 9 in parts and buf[slice(*parts[8])].decode() == name:
                return parts[9][0], parts[9][1] - parts[9][0]
    raise KeyError(name)
