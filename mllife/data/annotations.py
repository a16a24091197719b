"""Human-level accuracy from several annotators' labels for the same items.

The goal is human-level accuracy, not 100%: when people disagree on 5% of items, a
model at 95% is as good as a person. An annotations file (CSV or Parquet with columns
``item``, ``annotator``, ``label``) gives inter-annotator agreement — Fleiss' kappa,
mean pairwise Cohen's kappa, per-class specific agreement — and a human-level accuracy:
how often an annotator agrees with the majority of the *other* annotators on an item.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from mllife._errors import DataError

__all__ = ["HumanAgreement", "human_agreement", "read_annotations"]

COLUMNS = ("item", "annotator", "label")


def read_annotations(path: Path) -> pl.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"annotations file {path} does not exist (set data.annotations)")
    try:
        frame = pl.read_csv(path) if path.suffix.lower() == ".csv" else pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataError(f"cannot read annotations {path}: {exc}") from exc
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"annotations {path} lack columns {missing}; need {list(COLUMNS)}")
    frame = frame.select(pl.col(c).cast(pl.String) for c in COLUMNS)
    nulls = frame.filter(pl.any_horizontal(pl.all().is_null()))
    if nulls.height:
        raise DataError(
            f"annotations {path}: {nulls.height} rows have an empty item,"
            f" annotator or label, e.g. {nulls.row(0)}"
        )
    return frame.unique(subset=["item", "annotator"], keep="first")


@dataclass(frozen=True)
class HumanAgreement:
    n_items: int
    n_annotators: int
    fleiss_kappa: float
    mean_cohen_kappa: float
    #: how often one annotator agrees with the majority of the others
    human_accuracy: float
    per_class: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"{self.n_annotators} annotators on {self.n_items} items agree"
            f" {self.human_accuracy:.1%} of the time (Fleiss' kappa"
            f" {self.fleiss_kappa:.3f}): that is human-level accuracy"
        )


def human_agreement(frame: pl.DataFrame) -> HumanAgreement:
    """Agreement statistics over items labelled by two or more annotators."""
    counts = frame.group_by("item", "label").len()
    per_item = frame.group_by("item").len().rename({"len": "n"}).filter(pl.col("n") >= 2)
    if per_item.height == 0:
        raise DataError("annotations need items labelled by at least two annotators")
    counts = counts.join(per_item, on="item")
    labels = sorted(counts["label"].unique().to_list())
    matrix = (
        counts.pivot(on="label", index="item", values="len")
        .fill_null(0)
        .select(labels)
        .to_numpy()
        .astype(np.float64)
    )
    n_i = matrix.sum(axis=1)
    # Fleiss' kappa, generalised to items with different numbers of raters.
    p_i = ((matrix**2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = p_i.mean()
    p_j = matrix.sum(axis=0) / n_i.sum()
    p_e = (p_j**2).sum()
    kappa = float((p_bar - p_e) / (1 - p_e)) if p_e < 1 else 1.0
    # Per-class specific agreement: agreeing pairs among pairs that involve the class.
    agree = (matrix * (matrix - 1)).sum(axis=0)
    involved = (matrix * (n_i[:, None] - 1)).sum(axis=0)
    per_class = {
        lbl: float(a / b) for lbl, a, b in zip(labels, agree, involved, strict=True) if b > 0
    }
    # Leave-one-out majority: does each annotation match the others' majority?
    hits, total = 0, 0
    items = frame.join(per_item.select("item"), on="item")
    by_item = items.group_by("item").agg(pl.col("label"))
    for row in by_item.iter_rows(named=True):
        votes = row["label"]
        for i, label in enumerate(votes):
            others = votes[:i] + votes[i + 1 :]
            values, freq = np.unique(others, return_counts=True)
            if (freq == freq.max()).sum() > 1:
                continue  # the others are split: no majority to agree with
            total += 1
            hits += int(values[freq.argmax()] == label)
    human = hits / total if total else float("nan")
    # Mean Cohen's kappa over annotator pairs that share at least 2 items.
    from sklearn.metrics import cohen_kappa_score

    wide = frame.pivot(on="annotator", index="item", values="label")
    annotators = [c for c in wide.columns if c != "item"]
    kappas = []
    for a, b in itertools.combinations(annotators, 2):
        pair = wide.select(a, b).drop_nulls()
        if pair.height >= 2 and pair[a].n_unique() + pair[b].n_unique() > 2:
            kappas.append(cohen_kappa_score(pair[a].to_list(), pair[b].to_list()))
    return HumanAgreement(
        n_items=per_item.height,
        n_annotators=frame["annotator"].n_unique(),
        fleiss_kappa=kappa,
        mean_cohen_kappa=float(np.mean(kappas)) if kappas else float("nan"),
        human_accuracy=float(human),
        per_class=per_class,
    )
