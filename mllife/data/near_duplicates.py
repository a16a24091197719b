"""Near-duplicates: the same photo resized or re-encoded, the same row typed twice.

An exact hash sees a byte-identical copy only; a training photo saved again as JPEG in
the test set is a leak no hash notices. Here:

- **Images**: each file gets a perceptual hash (``imagehash.phash``, 64 bits) and a
  16x16 grayscale thumbnail, computed once per content and kept in a cache keyed by
  sha256. Candidate pairs are the hashes at most ``MAX_BITS`` bits apart (7 past 4,096
  images, 5 past 65,536: :func:`searched_bits`), found by multi-index hashing in
  about n x 64 lookups instead of n^2 comparisons; a candidate is a near-duplicate when
  its thumbnails differ by at most the configured mean absolute difference. A resized
  and re-encoded copy of a digit is ~0.01 apart; two different digits are 0.025 or more.
- **Tables**: rows that are equal once strings are case- and space-folded and numbers
  rounded to a few significant digits (a group-by, not a pairwise search).

A pair in two splits is a leak (the blocking ``no_leakage`` check); pairs within a split
are reported.
"""

from __future__ import annotations

import hashlib
import io
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import polars as pl

from mllife._cpus import usable_cpus
from mllife._errors import DataError
from mllife.storage.files import write_atomically

__all__ = [
    "MAX_BITS",
    "THUMBNAIL",
    "Fingerprints",
    "NearDuplicatePair",
    "NearDuplicates",
    "image_fingerprints",
    "near_duplicate_images",
    "near_duplicate_rows",
    "near_duplicates_in",
    "project_image_fingerprints",
    "searched_bits",
]

THUMBNAIL = 16  # pixels a side of the grayscale thumbnail compared
#: perceptual-hash bits two copies may differ in and still be compared (a copy of an 8x8
#: digit upscaled to 64 px and saved as JPEG differs in up to 8)
MAX_BITS = 8
#: pairs kept for the report and the check's metadata (counts are always complete)
KEPT_PAIRS = 1000
_CACHE_SCHEMA = {
    "sha256": pl.String,
    "phash": pl.UInt64,
    "thumbnail": pl.Binary,
    "colourfulness": pl.Float64,
}


@dataclass(frozen=True)
class NearDuplicatePair:
    first: str  # a file path, or "row N" of a table
    first_split: str
    second: str
    second_split: str
    #: images: mean absolute difference of the thumbnails (0-1); tables: 0 (equal once
    #: normalised)
    distance: float

    @property
    def leak(self) -> bool:
        return self.first_split != self.second_split


@dataclass(frozen=True)
class NearDuplicates:
    method: str
    checked: int = 0
    #: the first KEPT_PAIRS pairs, leaks first
    pairs: list[NearDuplicatePair] = field(default_factory=list)
    n_leaks: int = 0
    #: near-duplicate pairs within each split
    within: dict[str, int] = field(default_factory=dict)

    @property
    def leaks(self) -> list[NearDuplicatePair]:
        return [p for p in self.pairs if p.leak]

    def describe(self) -> str:
        said = f"{self.n_leaks} near-duplicate pair(s) across splits among {self.checked}"
        said += f" inputs ({self.method})"
        if any(self.within.values()):
            shown = ", ".join(f"{n} in {s}" for s, n in self.within.items() if n)
            said += f"; within one split: {shown}"
        return said


def _colourfulness(image) -> float:
    """Hasler and Suesstrunk's colourfulness (2003) of an RGB image: 0 for gray, ~100
    for vivid photos."""
    rgb = np.asarray(image.convert("RGB").resize((32, 32)), dtype=np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def _fingerprint(payload: bytes, what: str) -> tuple[int, bytes, float]:
    import imagehash
    from PIL import Image

    from mllife.data.decode import open_image

    image = open_image(payload, what=what)
    image.draft("RGB", (THUMBNAIL * 4, THUMBNAIL * 4))  # JPEG: decode small, fast
    gray = image.convert("L")
    phash = int(str(imagehash.phash(gray)), 16)
    small = gray.resize((THUMBNAIL, THUMBNAIL), Image.Resampling.BILINEAR)
    return phash, small.tobytes(), _colourfulness(image)


class Fingerprints(NamedTuple):
    """What is kept of each image, in the order asked for."""

    hashes: np.ndarray  # uint64 perceptual hashes
    thumbnails: np.ndarray  # uint8, n x 256 (16x16 grayscale)
    colourfulness: np.ndarray  # float64


def image_fingerprints(
    paths: list[str], sha256s: list[str], *, root: Path, cache: Path | None = None
) -> Fingerprints:
    """Each image's 64-bit perceptual hash, 16x16 grayscale thumbnail and colourfulness.
    Files are checked against their recorded sha256 (a file changed since ``raw_data``
    is a ``DataError``); with ``cache`` (a Parquet file) each content is decoded once,
    ever."""
    known = pl.DataFrame(schema=_CACHE_SCHEMA)
    if cache is not None and cache.is_file():
        try:
            known = pl.read_parquet(cache).select(list(_CACHE_SCHEMA)).cast(_CACHE_SCHEMA)
        except Exception as exc:  # an unreadable cache is rebuilt, never trusted
            print(f"mllife: ignoring the fingerprint cache {cache}: {exc}", file=sys.stderr)
    seen = dict.fromkeys(known["sha256"].to_list())
    wanted = {s: p for p, s in zip(paths, sha256s, strict=True) if s not in seen}

    def compute(item: tuple[str, str]) -> tuple[str, int, bytes, float]:
        sha, path = item
        file = Path(path) if Path(path).is_absolute() else root / path
        payload = file.read_bytes()
        if hashlib.sha256(payload).hexdigest() != sha:
            raise DataError(
                f"{path} changed since raw_data was materialized (hash mismatch);"
                " re-materialize raw_data and the assets after it"
            )
        return (sha, *_fingerprint(payload, str(path)))

    if wanted:  # PIL and imagehash's DCT release the GIL: threads share the decoding
        with ThreadPoolExecutor(max_workers=usable_cpus()) as pool:
            fresh = list(pool.map(compute, wanted.items()))
        added = pl.DataFrame(fresh, schema=_CACHE_SCHEMA, orient="row")
        known = pl.concat([known, added])
        if cache is not None:
            buffer = io.BytesIO()
            known.write_parquet(buffer)
            write_atomically(cache, buffer.getvalue())
    index = dict(zip(known["sha256"].to_list(), range(known.height), strict=True))
    order = np.fromiter((index[s] for s in sha256s), dtype=np.int64, count=len(sha256s))
    thumbs = np.frombuffer(b"".join(known["thumbnail"].to_list()), dtype=np.uint8)
    return Fingerprints(
        known["phash"].to_numpy()[order].astype(np.uint64),
        thumbs.reshape(known.height, THUMBNAIL * THUMBNAIL)[order],
        known["colourfulness"].to_numpy()[order],
    )


def project_image_fingerprints(config, rows: pl.DataFrame) -> Fingerprints:
    """:func:`image_fingerprints` of a project's manifest rows, through its cache."""
    return image_fingerprints(
        rows["path"].to_list(),
        rows["sha256"].to_list(),
        root=config.root,
        cache=config.state_dir / "cache" / "image_fingerprints.parquet",
    )


def searched_bits(n: int) -> int:
    """Hash distance up to which :func:`_candidate_pairs` finds every pair among ``n``
    hashes: ``2 * blocks - 1``, with blocks of about log2(n) bits (at least 8)."""
    return 2 * (64 // _block_width(n)) - 1


def _block_width(n: int) -> int:
    return max(8, math.ceil(math.log2(max(n, 2))))


def _candidate_pairs(hashes: np.ndarray, max_bits: int) -> np.ndarray:
    """Index pairs (i < j) whose hashes are at most ``max_bits`` bits apart, for
    ``max_bits`` up to :func:`searched_bits`.

    Multi-index hashing with one-bit probes (Norouzi et al. 2012): the 64 bits are cut
    into blocks of about log2(n) bits, so a block value is shared by about one hash
    in n; two hashes at most ``2 * blocks - 1`` bits apart differ in at most one bit of
    some block, so looking each hash's blocks up with each bit flipped in turn finds
    them. The work is about n x 64 lookups, not n^2 comparisons."""
    n = len(hashes)
    width = _block_width(n)
    blocks = 64 // width
    index = np.arange(n, dtype=np.int64)
    found = []
    for b in range(blocks):
        low = b * width
        high = 64 if b == blocks - 1 else low + width  # the last block takes the rest
        key = (hashes >> np.uint64(low)) & np.uint64((1 << (high - low)) - 1)
        table = pl.DataFrame({"j": index, "key": key})
        for flip in [0, *(1 << bit for bit in range(high - low))]:
            probe = pl.DataFrame({"i": index, "key": key ^ np.uint64(flip)})
            hits = probe.join(table, on="key").filter(pl.col("i") < pl.col("j"))
            found.append(hits.select("i", "j"))
    pairs = pl.concat(found).unique().to_numpy()
    if not len(pairs):
        return pairs.reshape(0, 2)
    apart = np.bitwise_count(hashes[pairs[:, 0]] ^ hashes[pairs[:, 1]])
    return pairs[apart <= max_bits]


def near_duplicate_images(
    hashes: np.ndarray, thumbnails: np.ndarray, *, max_distance: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j, as an n x 2 array) of near-duplicate images and their thumbnail
    distances (mean absolute difference, 0-1)."""
    pairs = _candidate_pairs(hashes, min(MAX_BITS, searched_bits(len(hashes))))
    distance = np.empty(len(pairs), dtype=np.float64)
    for start in range(0, len(pairs), 100_000):  # bounded memory on crowded buckets
        part = pairs[start : start + 100_000]
        a = thumbnails[part[:, 0]].astype(np.int16)
        distance[start : start + 100_000] = np.abs(a - thumbnails[part[:, 1]]).mean(1) / 255
    close = distance <= max_distance
    return pairs[close], distance[close]


def near_duplicate_rows(rows: pl.DataFrame, columns: list[str], *, digits: int) -> np.ndarray:
    """Pairs (i < j) of rows equal once strings are lower-cased with spaces collapsed and
    numbers rounded to ``digits`` significant digits: each row of a group paired with
    the group's first row."""
    normalised = []
    for name in columns:
        dtype = rows.schema[name]
        column = pl.col(name)
        if dtype.is_numeric():
            column = column.cast(pl.Float64).round_sig_figs(digits)
        elif dtype == pl.String:
            column = column.str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()
        normalised.append(column.alias(f"_{len(normalised)}"))
    keys = [f"_{i}" for i in range(len(normalised))]
    grouped = (
        rows.select(normalised)
        .with_row_index("_i")
        .group_by(keys)
        .agg(pl.col("_i"))
        .filter(pl.col("_i").list.len() > 1)
    )
    pairs = grouped.select(
        pl.col("_i").list.first().alias("i"), pl.col("_i").list.slice(1).alias("j")
    ).explode("j")
    return pairs.select(pl.col("i").cast(pl.Int64), pl.col("j").cast(pl.Int64)).to_numpy()


def _collect(method: str, names: list[str], splits: list[str], pairs, distance):
    order = {"train": 0, "validation": 1, "test": 2}
    found = []
    for (i, j), d in zip(pairs.tolist(), distance.tolist(), strict=True):
        if order.get(splits[j], 3) < order.get(splits[i], 3):
            i, j = j, i  # the training side first: that is the copy the model saw
        found.append(NearDuplicatePair(names[i], splits[i], names[j], splits[j], float(d)))
    found.sort(key=lambda p: (not p.leak, p.distance, p.first))
    within: dict[str, int] = {}
    for p in found:
        if not p.leak:
            within[p.first_split] = within.get(p.first_split, 0) + 1
    n_leaks = sum(p.leak for p in found)
    return NearDuplicates(method, len(names), found[:KEPT_PAIRS], n_leaks, within)


def near_duplicates_in(config, rows: pl.DataFrame, columns: dict | None) -> NearDuplicates:
    """Near-duplicates among split rows of the project (a ``split`` column), as
    ``[split] near_duplicate_distance`` / ``near_duplicate_digits`` define them."""
    settings = config.split
    splits = rows["split"].to_list()
    if config.data.kind == "images":
        hashes, thumbnails, _ = project_image_fingerprints(config, rows)
        pairs, distance = near_duplicate_images(
            hashes, thumbnails, max_distance=settings.near_duplicate_distance
        )
        method = (
            "perceptual hash, then 16x16 grayscale thumbnails at most"
            f" {settings.near_duplicate_distance:g} apart"
        )
        return _collect(method, rows["path"].to_list(), splits, pairs, distance)
    pairs = near_duplicate_rows(rows, list(columns), digits=settings.near_duplicate_digits)
    method = (
        "rows equal with text case- and space-folded and numbers to"
        f" {settings.near_duplicate_digits} significant digits"
    )
    names = [f"row {n}" for n in rows["row"].to_list()]
    return _collect(method, names, splits, pairs, np.zeros(len(pairs)))
