"""Suspected label errors in the training split, by confident learning (``cleanlab``).

Out-of-fold predicted probabilities come from a model that sees each row only when it
is not being scored: a standardised logistic regression over the rows' features (a
table's preprocessed columns; an image's grayscale thumbnail), five stratified folds.
``cleanlab.filter.find_label_issues`` then lists the rows whose given label is least
likely under those probabilities, worst first, with the label the probabilities favour.
They are reported, never dropped here. A class with fewer rows than folds cannot be
scored out of fold: its rows are left out of the search, and the result says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

__all__ = [
    "LabelIssue",
    "LabelIssues",
    "drop_label_issues",
    "find_label_issues",
    "label_issues_in",
    "training_label_issues",
]

FOLDS = 5


@dataclass(frozen=True)
class LabelIssue:
    key: str  # the file's path, or the row's id
    given: str
    suggested: str
    #: cleanlab's label quality score (self-confidence): the probability of the given label
    quality: float


@dataclass(frozen=True)
class LabelIssues:
    issues: list[LabelIssue] = field(default_factory=list)
    checked: int = 0
    #: classes left out (too few rows to score out of fold), with their row counts
    skipped: dict[str, int] = field(default_factory=dict)
    #: why nothing could be searched, when nothing was
    reason: str | None = None

    def describe(self) -> str:
        if self.reason:
            return self.reason
        said = (
            f"{len(self.issues)} of {self.checked} training rows look mislabelled"
            " (confident learning on out-of-fold probabilities)"
        )
        if self.skipped:
            said += f"; classes left out, too few rows to score: {self.skipped}"
        return said


def find_label_issues(
    features: np.ndarray, labels, keys, *, folds: int = FOLDS, seed: int = 0
) -> LabelIssues:
    """Suspected label errors among rows of ``features`` (one row per key) with their
    given ``labels``; worst first."""
    import cleanlab.filter
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray([str(v) for v in labels], dtype=object)
    keys = np.asarray([str(k) for k in keys], dtype=object)
    if not (features.shape[0] == len(labels) == len(keys)):
        raise ValueError(f"{features.shape[0]} rows, {len(labels)} labels and {len(keys)} keys")
    names, counts = np.unique(labels, return_counts=True)
    skipped = {str(n): int(c) for n, c in zip(names, counts, strict=True) if c < folds}
    kept = ~np.isin(labels, list(skipped))
    classes = [str(n) for n in names if str(n) not in skipped]
    if len(classes) < 2:
        return LabelIssues(
            checked=0, skipped=skipped,
            reason=f"label errors not searched: fewer than two classes with {folds} or more"
            f" training rows ({dict(zip(names.tolist(), counts.tolist(), strict=True))})",
        )  # fmt: skip
    x, y = features[kept], np.searchsorted(classes, labels[kept])
    # sparse text n-grams are already on one scale (TF-IDF), and centring would densify
    sparse = hasattr(x, "tocsr")
    model = make_pipeline(
        *([] if sparse else [StandardScaler()]), LogisticRegression(max_iter=2000)
    )
    split = StratifiedKFold(folds, shuffle=True, random_state=seed)
    proba = cross_val_predict(model, x, y, cv=split, method="predict_proba")
    # n_jobs=1: cleanlab's default process pool failed inside a run's step process
    ranked = cleanlab.filter.find_label_issues(
        y, proba, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    kept_keys = keys[kept]  # once: indexing inside the loop copied every key per issue
    issues = [
        LabelIssue(
            str(kept_keys[i]),
            classes[y[i]],
            classes[int(proba[i].argmax())],
            float(proba[i, y[i]]),
        )  # fmt: skip
        for i in ranked
    ]
    return LabelIssues(issues, int(kept.sum()), skipped)


def label_issues_in(config, rows: pl.DataFrame, columns: dict | None) -> LabelIssues:
    """:func:`find_label_issues` over ``rows`` (clean or split rows of the project), keyed
    by file path (images) or ``row N`` of the table."""
    if config.data.kind == "images":
        from mllife.data.near_duplicates import project_image_fingerprints

        # the near-duplicate search's thumbnails, decoded once per content
        thumbnails = project_image_fingerprints(config, rows).thumbnails
        features = thumbnails.astype(np.float32) / 255.0
        keys = rows["path"].to_list()
    else:
        from mllife.preprocess.tables import TablePreprocessor

        pre = TablePreprocessor(columns=columns)
        features = pre.fit_transform(rows.select(list(columns)))
        features = features.matrix if hasattr(features, "matrix") else features.numpy()
        keys = [f"row {n}" for n in rows["row"].to_list()]
    return find_label_issues(features, rows["label"].to_list(), keys)


def training_label_issues(config, splits) -> LabelIssues:
    """:func:`label_issues_in` the training split of ``splits``."""
    from mllife.preprocess.inputs import split_rows

    return label_issues_in(config, split_rows(splits.rows, "train"), splits.columns)


def drop_label_issues(config, clean_data):
    """``clean_data`` without the rows suspected of a wrong label (searched over all its
    rows), each added to its dropped rows with the reason; and the issues found."""
    from dataclasses import replace

    found = label_issues_in(config, clean_data.rows, clean_data.columns)
    if not found.issues:
        return clean_data, found
    keys = (
        clean_data.rows["path"]
        if config.data.kind == "images"
        else ("row " + clean_data.rows["row"].cast(pl.String))
    )
    suspected = {i.key: i for i in found.issues}
    drop = keys.is_in(list(suspected))
    gone = clean_data.rows.filter(drop)
    reasons = [
        f"suspected label error: labelled {s.given!r}, looks like {s.suggested!r}"
        f" (P(given label) {s.quality:.3f}; [cleaning] drop_label_issues)"
        for s in (suspected[k] for k in keys.filter(drop).to_list())
    ]
    dropped = pl.DataFrame(
        {"path": keys.filter(drop), "label": gone["label"], "sha256": gone["sha256"],
         "reason": reasons},
        schema=clean_data.dropped.schema,
    )  # fmt: skip
    kept = clean_data.rows.filter(~drop)
    return replace(clean_data, rows=kept, dropped=pl.concat([clean_data.dropped, dropped])), found
