"""The embedded default data: scikit-learn's digits, written as PNG files by class.

The PNG bytes must be identical on every machine so that ``data.dvc`` pins them. zlib
implementations (zlib, zlib-ng, ...) compress differently, so the image data is written
as *stored* (uncompressed) deflate blocks by hand: the format is fixed, and an 8x8 image
is only 72 bytes of pixels anyway.
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import struct
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

from mllife.storage.files import DIR_MODE, atomic_target

__all__ = ["encode_gray_png", "ensure_data", "write_breast_cancer", "write_digits"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _stored_zlib(raw: bytes) -> bytes:
    """A zlib stream of stored deflate blocks: the same bytes from any implementation."""
    out = bytearray(b"\x78\x01")
    view = memoryview(raw)
    step = 65535
    for start in range(0, max(len(raw), 1), step):
        block = bytes(view[start : start + step])
        final = 1 if start + step >= len(raw) else 0
        out += bytes([final]) + struct.pack("<HH", len(block), len(block) ^ 0xFFFF) + block
    out += struct.pack(">I", zlib.adler32(raw) & 0xFFFFFFFF)
    return bytes(out)


def encode_gray_png(pixels: np.ndarray) -> bytes:
    """Encode a 2-D ``uint8`` array as an 8-bit grayscale PNG, byte-for-byte reproducibly."""
    if pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 array, got shape {pixels.shape} {pixels.dtype}")
    height, width = pixels.shape
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    # Each scanline starts with filter type 0 (none).
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    return (
        _PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", _stored_zlib(raw))
        + (_chunk(b"IEND", b""))
    )


def _digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as (N, 8, 8) pixels 0..16 and (N,) labels.

    Read from the CSV scikit-learn ships, without importing scikit-learn: its import
    takes a second of CPU that the first ``mllife run`` spends beside the graph's own
    imports. ``load_digits`` (same file, same numbers) if a release moves the file.
    """
    spec = importlib.util.find_spec("sklearn")
    source = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if source.is_file():
        with gzip.open(source, "rt") as handle:
            table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
        return table[:, :-1].reshape(-1, 8, 8), table[:, -1]
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images, digits.target


def write_digits(target: Path | str) -> int:
    """Write scikit-learn's digits as ``target/<label>/<index>.png``; return the file count.

    The folder appears complete or not at all: files are written to a temporary sibling
    that is renamed into place, so an interrupted write never leaves half a data set.
    """
    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists; remove it first to rewrite the data")
    pixels, labels = _digits()
    # Digits pixels are 0..16; spread them over 0..255 with exact integer rounding.
    images = ((pixels.astype(np.int64) * 255 + 8) // 16).astype(np.uint8)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staging.chmod(DIR_MODE)
    try:
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            folder = staging / str(int(label))
            folder.mkdir(exist_ok=True)
            (folder / f"{index:04d}.png").write_bytes(encode_gray_png(image))
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return len(images)


def write_breast_cancer(target: Path | str) -> int:
    """Write scikit-learn's breast cancer table (30 features, ``target``) as Parquet or CSV.

    The target is the class name ("malignant"/"benign"); rows get a stable ``id``.
    """
    import polars as pl
    from sklearn.datasets import load_breast_cancer

    target = Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists; remove it first to rewrite the data")
    data = load_breast_cancer()
    columns = {name.replace(" ", "_"): data.data[:, i] for i, name in enumerate(data.feature_names)}
    frame = pl.DataFrame(
        {
            "id": [f"bc{i:04d}" for i in range(len(data.target))],
            **columns,
            "target": [str(data.target_names[t]) for t in data.target],
        }
    )
    with atomic_target(target) as tmp:
        if target.suffix.lower() == ".csv":
            frame.write_csv(tmp)
        else:
            frame.write_parquet(tmp)
    return frame.height


def ensure_data(config) -> list[str]:
    """Write the default data when the configured folder is missing; return what happened.

    Only the embedded default is written; a missing folder of the user's own is an error
    raised later by the data stage, naming the path.
    """
    from mllife.storage.dvc import directory_version, dvc_add, is_dvc_repo, pinned_version

    if config.data_path.exists() or config.data.default_data == "none":
        return []
    if config.data.default_data == "breast_cancer":
        count = write_breast_cancer(config.data_path)
        return [f"wrote {count} rows of the breast cancer table to {config.data_path}"]
    if config.data.default_data == "colour_photos":
        from mllife.data.colour_photos import write_colour_photos

        count = write_colour_photos(config.data_path)
        return [f"wrote {count} synthetic colour photos to {config.data_path}"]
    count = write_digits(config.data_path)
    lines = [f"wrote {count} digit images to {config.data_path}"]
    pin = config.root / "data.dvc"
    tracked = config.root / "data"
    if pin.is_file() and config.data_path.is_relative_to(tracked):
        written = directory_version(tracked).md5
        pinned = pinned_version(pin).md5
        lines.append(
            f"data/ hash {written} {'matches' if written == pinned else 'DIFFERS FROM'}"
            f" data.dvc ({pinned})"
        )
        if written == pinned and is_dvc_repo(config.root):
            started = time.perf_counter()
            dvc_add(config.root, "data", lock_dir=config.state_dir)
            lines.append("data/ added to the DVC cache (dvc status is clean)")
            lines.append(f"dvc add data: {time.perf_counter() - started:.2f} s")
    return lines
