"""What text drift is measured on. A free-text column is not compared as categories
(nearly every review is unique); it becomes two numeric columns, ``<column>:length``
(characters, once normalised) and ``<column>:unknown_words`` (the share of its words that
no reference text holds), and one test on the texts' meaning: the
maximum mean discrepancy between the two samples' sentence vectors, with a permutation
p-value. All three are corrected with the other columns' tests (Benjamini-Hochberg).

A reference text's own words are in the reference by definition, so its unknown share is
measured leave-one-out: a word counts as known when another reference text holds it.
Otherwise the reference would always look fully known and any new text like drift.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import polars as pl

from mllife.data.text_normal import normalized_text

__all__ = ["embedding_mmd", "text_drift_columns", "text_vectors"]

_WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token pattern
#: the vectors compared, per side (the permutation test is quadratic in it)
MMD_SAMPLE = 500
PERMUTATIONS = 200


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _unknown_shares(texts: list[str], documents: Counter, *, within: bool) -> list[float]:
    """Per text, the share of its words held by no reference text (``documents``: in
    how many reference texts each word is); ``within``: the texts are the reference."""
    needed = 2 if within else 1
    out = []
    for text in texts:
        words = _words(text)
        out.append(sum(documents[w] < needed for w in words) / len(words) if words else 0.0)
    return out


def text_drift_columns(
    reference: pl.DataFrame, current: pl.DataFrame, texts: list[str]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both frames with each text column replaced by its length and unknown-word share."""
    sides = {"reference": [], "current": []}
    for name in texts:
        values = {
            side: [normalized_text(v) for v in frame[name].cast(pl.String).to_list()]
            for side, frame in (("reference", reference), ("current", current))
        }
        documents = Counter(w for text in values["reference"] for w in set(_words(text)))
        for side, texts_of_side in values.items():
            sides[side] += [
                pl.Series(f"{name}:length", [len(v) for v in texts_of_side], dtype=pl.Float64),
                pl.Series(
                    f"{name}:unknown_words",
                    _unknown_shares(texts_of_side, documents, within=side == "reference"),
                ),
            ]
    return reference.drop(texts).hstack(sides["reference"]), current.drop(texts).hstack(
        sides["current"]
    )


def text_vectors(model, frame: pl.DataFrame, column: str) -> np.ndarray | None:
    """The sentence vectors ``model`` reads ``column``'s texts as (a sentence-encoder
    model); None for a model without an encoder."""
    if not hasattr(model, "encoder") or not hasattr(model, "embed"):
        return None
    values = [normalized_text(v) for v in frame[column].cast(pl.String).to_list()]
    return model.embed(values)


def embedding_mmd(reference: np.ndarray, current: np.ndarray, *, seed: int = 0) -> dict:
    """The maximum mean discrepancy (Gaussian kernel, median-distance bandwidth) between
    two samples of vectors, with a permutation p-value; the effect is the MMD itself (0
    for the same distribution, up to sqrt(2))."""
    rng = np.random.default_rng(seed)
    a = reference[rng.permutation(len(reference))[:MMD_SAMPLE]].astype(np.float64)
    b = current[rng.permutation(len(current))[:MMD_SAMPLE]].astype(np.float64)
    both = np.vstack([a, b])
    squared = np.sum(both**2, axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * both @ both.T, 0.0)
    bandwidth = np.median(distances[np.triu_indices(len(both), 1)]) or 1.0
    kernel = np.exp(-distances / bandwidth)
    n = len(a)

    def mmd2(order: np.ndarray) -> float:
        k = kernel[np.ix_(order, order)]
        x, y, xy = k[:n, :n], k[n:, n:], k[:n, n:]
        m = len(order) - n
        return float(
            (x.sum() - np.trace(x)) / (n * (n - 1))
            + (y.sum() - np.trace(y)) / (m * (m - 1))
            - 2 * xy.mean()
        )

    observed = mmd2(np.arange(len(both)))
    null = [mmd2(rng.permutation(len(both))) for _ in range(PERMUTATIONS)]
    p_value = (1 + sum(v >= observed for v in null)) / (1 + PERMUTATIONS)
    return {
        "test": f"MMD of sentence vectors ({PERMUTATIONS} permutations)",
        "statistic": observed,
        "p_value": float(p_value),
        "effect": float(np.sqrt(max(observed, 0.0))),
        "psi": float("nan"),
    }
