"""Weak spots: slices of the validation rows where the challenger is wrong more often.

SliceLine (the ``sliceline`` package, Sagadeeva and Boehm, SIGMOD 2021) searches one-
and two-condition slices over the rows' features (table columns; for images their
metadata: size, aspect, brightness, contrast, colourfulness, colour mode, source folder,
and the cluster of the backbone's embedding when the model has one). Numbers are cut
into quantile
bins first ("age >= 61.5", "bmi in [20.1, 24.8)"), categories stay values ("smoker =
yes"), and columns with too many values (free text, ids) are left out. SliceLine
proposes slices from at most 20,000 rows (a sample beyond); each candidate
slice is then tested against the rest of the rows (Fisher's exact test, one-sided: more
errors inside), the p-values of all candidates are corrected together
(Benjamini-Hochberg), and only slices whose gap survives are kept, each with its
accuracy, Wilson interval, size and members. Too few rows claim nothing, and say so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath

import numpy as np
import polars as pl

__all__ = [
    "MIN_ROWS",
    "Slice",
    "Slices",
    "find_slices",
    "image_slice_features",
    "latest_slices",
    "record_slices",
    "search_rows",
    "validation_slices",
]

#: validation rows below which no slice is claimed
MIN_ROWS = 100
BINS = 5  # quantile bins per number column
MAX_VALUES = 20  # a column with more distinct values (text, ids) is left out
CANDIDATES = 20  # slices SliceLine proposes, all tested and corrected together
MIN_SIZE = 10
#: rows SliceLine searches (a sample beyond it; the slices' figures use every row)
SEARCH_ROWS = 20_000
CLUSTERS = 8  # of an embedding model's backbone vectors, for image slices


@dataclass(frozen=True)
class Slice:
    #: (column, condition) pairs, e.g. ("age", ">= 61.5"), ("smoker", "= yes")
    rule: tuple[tuple[str, str], ...]
    size: int
    accuracy: float
    low: float
    high: float
    rest_accuracy: float
    #: Benjamini-Hochberg adjusted p-value of "more errors than the rest"
    p_value: float
    #: the rows in it: file paths, or "row N" of a table
    members: tuple[str, ...] = ()

    @property
    def description(self) -> str:
        return " and ".join(f"{column} {condition}" for column, condition in self.rule)


@dataclass(frozen=True)
class Slices:
    slices: list[Slice] = field(default_factory=list)
    checked: int = 0
    #: why nothing was claimed, when nothing could be
    reason: str | None = None

    def describe(self) -> str:
        if self.reason:
            return self.reason
        if not self.slices:
            return (
                f"no slice of the {self.checked} validation rows is worse than the rest beyond"
                " chance"
            )
        return f"{len(self.slices)} slice(s) of the {self.checked} validation rows are worse"


def _show(value: float) -> str:
    return f"{value:.4g}"


def _conditions(frame: pl.DataFrame) -> tuple[np.ndarray, list[str], list[dict]]:
    """Each usable column as integer condition codes per row (n x columns), the columns
    used and, per column, code -> condition text."""
    codes, used, texts = [], [], []
    for name in frame.columns:
        column = frame[name]
        distinct = column.n_unique()
        if distinct < 2:
            continue
        if column.dtype.is_numeric() and distinct > BINS:
            values = column.cast(pl.Float64).to_numpy()
            finite = values[np.isfinite(values)]
            edges = np.unique(np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1]))
            code = np.where(np.isfinite(values), np.searchsorted(edges, values, side="right"), -1)
            text = {
                -1: "is missing",
                0: f"< {_show(edges[0])}",
                len(edges): f">= {_show(edges[-1])}",
            }
            for i in range(1, len(edges)):
                text[i] = f"in [{_show(edges[i - 1])}, {_show(edges[i])})"
        elif distinct <= MAX_VALUES:
            text_values = column.cast(pl.String)
            names = sorted(text_values.drop_nulls().unique().to_list())
            code = text_values.cast(pl.Enum(names)).to_physical()  # index into names
            code = code.cast(pl.Int64).fill_null(-1).to_numpy()
            text = {i: f"= {v}" for i, v in enumerate(names)} | {-1: "is missing"}
        else:
            continue  # free text, ids: no condition a person could read
        codes.append(code.astype(np.int64))
        used.append(name)
        texts.append(text)
    stacked = np.column_stack(codes) if codes else np.empty((frame.height, 0), dtype=np.int64)
    return stacked, used, texts


def search_rows(n: int) -> np.ndarray:
    """The rows (of ``n``) SliceLine searches: all, or a seeded sample of SEARCH_ROWS."""
    if n <= SEARCH_ROWS:
        return np.arange(n)
    return np.random.default_rng(0).permutation(n)[:SEARCH_ROWS]


def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(p)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def find_slices(
    features: pl.DataFrame,
    correct,
    keys,
    *,
    max_conditions: int = 2,
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> Slices:
    """Slices of ``features`` (one row per prediction) where ``correct`` (bools) is
    lower than in the rest beyond chance; ``keys`` name the rows."""
    from scipy.stats import fisher_exact
    from sliceline.slicefinder import Slicefinder

    from mllife.metrics._intervals import wilson_interval

    correct = np.asarray(correct, dtype=bool)
    keys = [str(k) for k in keys]
    if not (features.height == len(correct) == len(keys)):
        raise ValueError(f"{features.height} rows, {len(correct)} outcomes, {len(keys)} keys")
    n = len(correct)
    if n < MIN_ROWS:
        return Slices(checked=n, reason=f"slices not searched: {n} validation rows, fewer"
                      f" than {MIN_ROWS} (too few to tell a weak spot from chance)")  # fmt: skip
    errors = (~correct).astype(int)
    if errors.sum() == 0:
        return Slices(checked=n, reason="slices not searched: no validation row is wrong")
    codes, used, texts = _conditions(features)
    if not used:
        return Slices(checked=n, reason="slices not searched: no column with a few values")
    finder = Slicefinder(
        alpha=0.95, k=CANDIDATES, max_l=max_conditions, min_sup=MIN_SIZE, verbose=False
    )
    # SliceLine's cost grows with the rows (~0.2 ms each here): it proposes slices from
    # a sample; every proposal's figures below are counted on all the rows
    sample = search_rows(n)
    finder.fit(codes[sample], errors[sample])
    candidates, p_values = [], []
    for top in finder.top_slices_:
        inside = np.ones(n, dtype=bool)
        rule = []
        for j, value in enumerate(top):
            if value is not None:
                inside &= codes[:, j] == int(value)
                rule.append((used[j], texts[j][int(value)]))
        size, wrong = int(inside.sum()), int(errors[inside].sum())
        rest, rest_wrong = n - size, int(errors[~inside].sum())
        if not rule or rest == 0:
            continue
        table = [[wrong, size - wrong], [rest_wrong, rest - rest_wrong]]
        p_values.append(fisher_exact(table, alternative="greater").pvalue)
        candidates.append((tuple(rule), inside, size, wrong, rest, rest_wrong))
    if not candidates:
        return Slices(checked=n)
    adjusted = _benjamini_hochberg(np.asarray(p_values))
    found = []
    for (rule, inside, size, wrong, rest, rest_wrong), p in zip(candidates, adjusted, strict=True):
        if p >= alpha:
            continue
        low, high = wilson_interval(size - wrong, size, confidence)
        members = tuple(k for k, member in zip(keys, inside, strict=True) if member)
        found.append(Slice(rule, size, 1 - wrong / size, low, high,
                           1 - rest_wrong / rest, float(p), members))  # fmt: skip
    found.sort(key=lambda s: (s.p_value, s.accuracy))
    return Slices(found, n)


def image_slice_features(
    rows: pl.DataFrame, thumbnails: np.ndarray, colourfulness: np.ndarray | None = None
) -> pl.DataFrame:
    """What slices of images are described by: size, aspect, colour mode (from the
    manifest), brightness and contrast (from each image's 16x16 grayscale thumbnail,
    ``data.near_duplicates``), colourfulness, and the source folder below the class
    folder (``photos/cat/cam3/1.jpg``: "cam3") when there is one."""
    gray = thumbnails.astype(np.float32) / 255.0
    out = {
        "brightness": gray.mean(axis=1),
        "contrast": gray.std(axis=1),
    }
    if colourfulness is not None:
        out["colourfulness"] = colourfulness
    if {"width", "height"} <= set(rows.columns):
        width = rows["width"].cast(pl.Float64).to_numpy()
        height = rows["height"].cast(pl.Float64).to_numpy()
        out["pixels"] = width * height
        out["aspect"] = np.divide(width, height, out=np.ones_like(width), where=height > 0)
    frame = pl.DataFrame(out)
    if "mode" in rows.columns:
        frame = frame.with_columns(rows["mode"].alias("colour mode"))
    if "path" in rows.columns and "label" in rows.columns:
        folders = [
            parent.name if parent.name != label else None
            for parent, label in zip(
                (PurePosixPath(p).parent for p in rows["path"].to_list()),
                rows["label"].to_list(),
                strict=True,
            )
        ]
        frame = frame.with_columns(pl.Series("source folder", folders, dtype=pl.String))
    return frame


def validation_slices(config, splits, evaluation, *, store) -> Slices:
    """:func:`find_slices` for a candidate's validation predictions: table columns (not
    ``[data] pii`` ones: a rule would show their values), or image metadata. Members
    are split keys for tables, file paths for images."""
    from mllife.preprocess.inputs import split_rows

    rows = split_rows(splits.rows, "validation")
    correct = np.asarray(evaluation.validation_predictions, dtype=object) == np.asarray(
        rows["label"].cast(pl.String).to_list(), dtype=object
    )
    if config.data.kind == "images":
        from mllife.data.near_duplicates import project_image_fingerprints

        kept = project_image_fingerprints(config, rows)  # one read of the cache
        features = image_slice_features(rows, kept.thumbnails, kept.colourfulness)
        if evaluation.ref.kind == "embedding":  # a backbone: what it sees, grouped
            features = features.with_columns(
                embedding_clusters(config, evaluation.ref, rows, store=store)
            )
        keys = rows["path"].to_list()
    else:
        private = set(config.data.pii)
        features = rows.select([c for c in splits.columns if c not in private])
        keys = rows[splits.key].cast(pl.String).to_list()
    return find_slices(features, correct, keys)


def embedding_clusters(config, ref, rows: pl.DataFrame, *, store) -> pl.Series:
    """Each image's cluster (1-8) of the embedding model's backbone vectors (k-means):
    a slice "embedding cluster = 4" is a kind of image the model's backbone sees alike."""
    from sklearn.cluster import KMeans

    from mllife.models.registry import load_model
    from mllife.models.training import place_model
    from mllife.preprocess.inputs import model_inputs

    model = load_model(ref, artifacts_dir=config.artifacts_dir, store=store)
    place_model(model, config)  # the embedding cache evaluation filled
    vectors = model.embed(model_inputs(rows, config=config, preprocessor=model.preprocessor))
    k = min(CLUSTERS, max(2, len(rows) // MIN_SIZE))
    labels = KMeans(n_clusters=k, n_init=3, random_state=0).fit_predict(vectors)
    return pl.Series("embedding cluster", [str(c + 1) for c in labels], dtype=pl.String)


def record_slices(store, *, run_id: str | None, model_hash: str, found: Slices) -> None:
    """The run's slices, numbered from 1 (a rerun of the step replaces them)."""
    import json
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(tzinfo=None)
    with store.writing() as conn:
        conn.execute("DELETE FROM slices WHERE run_id IS NOT DISTINCT FROM ?", [run_id])
        for number, s in enumerate(found.slices, start=1):
            conn.execute(
                "INSERT INTO slices VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [run_id, number, model_hash, s.description, json.dumps(s.rule), s.size,
                 s.accuracy, s.low, s.high, s.rest_accuracy, s.p_value,
                 json.dumps(list(s.members)), now],
            )  # fmt: skip


def latest_slices(store) -> pl.DataFrame:
    """The slices of the newest run that recorded any, by number."""
    return store.query(
        "SELECT * FROM slices WHERE created_at = (SELECT max(created_at) FROM slices)"
        " ORDER BY number"
    )
