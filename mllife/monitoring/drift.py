"""Data and prediction drift: is the current data still like the training data?

Per column: numeric columns get the two-sample Kolmogorov-Smirnov test, the Wasserstein
distance in units of the reference standard deviation, and the population stability
index (PSI) over reference deciles; categorical columns get the chi-squared test, the
Jensen-Shannon distance and PSI over categories. A column with missing values on either
side also gets a test of its missing share (two proportions; the effect is the difference
in share), corrected with the others: a column going from 0% to 60% missing drifts.

At large sample sizes every tiny difference is "significant", so p-values alone cry
wolf. A column drifts only when its Benjamini-Hochberg-adjusted p-value is below
``alpha`` (controlling false discoveries across columns) *and* its effect size reaches
``min_effect`` (Wasserstein/std for numbers, Jensen-Shannon distance for categories).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from mllife._cpus import usable_cpus
from mllife.monitoring._statistics import categorical as _categorical
from mllife.monitoring._statistics import numeric as _numeric
from mllife.monitoring._statistics import scipy_stats
from mllife.monitoring._statistics import sorted_keys as _sorted_keys

__all__ = ["ColumnDrift", "DriftReport", "drift"]


@dataclass(frozen=True)
class ColumnDrift:
    column: str
    kind: str  # "numeric", "categorical" or "missing" (its share of missing values)
    test: str
    statistic: float
    p_value: float
    p_adjusted: float
    effect: float  # Wasserstein/std (numeric) or Jensen-Shannon distance (categorical)
    psi: float
    drifted: bool
    n_reference: int
    n_current: int


@dataclass(frozen=True)
class DriftReport:
    columns: tuple[ColumnDrift, ...]
    alpha: float
    min_effect: float
    share_threshold: float
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def drifted_columns(self) -> list[str]:
        """Columns whose values or missing share drifted, each once."""
        return list(dict.fromkeys(c.column for c in self.columns if c.drifted))

    @property
    def share_drifted(self) -> float:
        compared = {c.column for c in self.columns}
        return len(self.drifted_columns) / len(compared) if compared else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.columns) and self.share_drifted >= self.share_threshold

    def summary(self) -> str:
        if not self.columns:
            return "no columns compared"
        verdict = "DRIFT" if self.dataset_drift else "no dataset drift"
        drifted = ", ".join(self.drifted_columns) or "none"
        compared = len({c.column for c in self.columns})
        return f"{verdict}: {len(self.drifted_columns)} of {compared} columns drifted ({drifted})"

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame([c.__dict__ for c in self.columns])


#: above this many values per sample, Wasserstein is integrated on this many quantiles
def _benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    n = len(p)
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def drift(
    reference: Any,
    current: Any,
    *,
    columns: list[str] | None = None,
    alpha: float = 0.05,
    min_effect: float = 0.1,
    share_threshold: float = 0.3,
    min_rows: int = 30,
    extra: tuple = (),
) -> DriftReport:
    """Compare ``current`` with ``reference`` column by column.

    Parameters
    ----------
    reference, current : polars DataFrame (or anything ``polars.DataFrame`` accepts)
    columns : the columns to compare (default: those both frames share)
    alpha : false-discovery rate across columns (Benjamini-Hochberg)
    min_effect : smallest effect that counts as drift: a Wasserstein distance of 0.1
        reference standard deviations, or a Jensen-Shannon distance of 0.1
    share_threshold : the share of drifted columns that makes the dataset drift
    extra : tests made elsewhere, corrected with these: ``(column, kind, statistics,
        n_reference, n_current)`` (a text column's sentence-vector MMD)

    Examples
    --------
    >>> import numpy as np, polars as pl
    >>> rng = np.random.default_rng(0)
    >>> ref = pl.DataFrame({"x": rng.normal(size=5000)})
    >>> drift(ref, pl.DataFrame({"x": rng.normal(0.5, 1, size=5000)})).drifted_columns
    ['x']
    """
    reference = reference if isinstance(reference, pl.DataFrame) else pl.DataFrame(reference)
    current = current if isinstance(current, pl.DataFrame) else pl.DataFrame(current)
    names = columns or [c for c in reference.columns if c in current.columns]
    missing = [c for c in names if c not in reference.columns or c not in current.columns]
    if missing:
        raise ValueError(f"columns {missing} are not in both frames")
    compared = _compare_columns(reference, current, names, min_rows)
    notes = [
        f"{name}: fewer than {min_rows} non-missing values; not compared"
        for name, result in zip(names, compared, strict=True)
        if result is None
    ]
    rows = [result for result in compared if result is not None]
    rows += [r for name in names if (r := _missing_share(reference, current, name, min_rows))]
    rows += list(extra)
    adjusted = _benjamini_hochberg(np.array([r[2]["p_value"] for r in rows])) if rows else []
    out = tuple(
        ColumnDrift(
            column=name,
            kind=kind,
            test=r["test"],
            statistic=r["statistic"],
            p_value=r["p_value"],
            p_adjusted=float(p_adj),
            effect=r["effect"],
            psi=r["psi"],
            drifted=bool(p_adj < alpha and r["effect"] >= min_effect),
            n_reference=nr,
            n_current=nc,
        )
        for (name, kind, r, nr, nc), p_adj in zip(rows, adjusted, strict=True)
    )
    return DriftReport(out, alpha, min_effect, share_threshold, tuple(notes))


def _missing(column: pl.Series) -> int:
    count = column.null_count()
    if column.dtype.is_float():
        count += int(column.is_nan().sum() or 0)
    return count


def _missing_share(reference: pl.DataFrame, current: pl.DataFrame, name: str, min_rows: int):
    """The two-proportion z-test of a column's missing share, when either side misses
    values (None otherwise, or when a side has fewer than ``min_rows`` rows)."""
    n1, n2 = reference.height, current.height
    m1, m2 = _missing(reference[name]), _missing(current[name])
    if (m1 == 0 and m2 == 0) or n1 < min_rows or n2 < min_rows:
        return None
    p1, p2, pooled = m1 / n1, m2 / n2, (m1 + m2) / (n1 + n2)
    spread = (pooled * (1 - pooled) * (1 / n1 + 1 / n2)) ** 0.5
    z = (p2 - p1) / spread if spread > 0 else 0.0
    p_value = float(2 * scipy_stats().norm.sf(abs(z)))
    shares = np.clip([[p1, 1 - p1], [p2, 1 - p2]], 1e-4, None)  # missing, present
    psi = float(np.sum((shares[1] - shares[0]) * np.log(shares[1] / shares[0])))
    stats = {"test": "missing share (two-proportion z)", "statistic": float(z),
             "p_value": p_value, "effect": abs(p2 - p1), "psi": psi}  # fmt: skip
    return name, "missing", stats, n1, n2


def _compare_columns(reference: pl.DataFrame, current: pl.DataFrame, names, min_rows: int):
    """Per column (name, kind, statistics, n_reference, n_current), or None when a side
    has fewer than ``min_rows`` values. Columns run in threads: sorting and searching
    dominate at scale and release the GIL."""
    both_numeric = {
        n for n in names if reference[n].dtype.is_numeric() and current[n].dtype.is_numeric()
    }

    def compare(name: str):
        ref, cur = reference[name], current[name]
        # Integers with few distinct values (codes, counts) are compared as categories.
        if name in both_numeric and (ref.dtype.is_float() or ref.drop_nulls().n_unique() > 10):
            (a, spread), (b, _) = _sorted_keys(ref), _sorted_keys(cur)
            if len(a) < min_rows or len(b) < min_rows:
                return None
            return name, "numeric", _numeric(a, b, spread), len(a), len(b)
        ref, cur = ref.drop_nulls(), cur.drop_nulls()
        if ref.dtype.is_float():
            ref, cur = ref.drop_nans(), cur.drop_nans()
        if len(ref) < min_rows or len(cur) < min_rows:
            return None
        return name, "categorical", _categorical(ref, cur), len(ref), len(cur)

    scipy_stats()  # imported here, not by several threads at once
    workers = min(len(names), usable_cpus()) or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(compare, names))
