"""The review queue: served inputs ordered by how much they need a person.

One item per distinct input (its SHA-256): an input served a hundred times is reviewed
once. How much an input needs review::

    need = (1 - confidence) + 0.5 * disagreement + 0.25 * (5 - rating) / 4

``confidence``: the lowest the answering models gave it (0 to 1); ``disagreement``: 1
when the models that saw it (champion, shadow, canary, earlier champions) gave it
different labels; ``rating``: the lowest user rating of any of its predictions (1-5; no
rating counts 0). Low confidence weighs most, then disagreement, then low ratings.
An input leaves the queue once a reviewer labels it, skips it or adds it to a known
problem. Read from the store and the segments not yet ingested (``served_view``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from mllife.config.project import ProjectConfig
from mllife.monitoring.served_view import served_views
from mllife.storage.store import Store

__all__ = ["NEED_SQL", "QueueFilter", "ReviewItem", "ReviewPage", "review_items", "review_queue"]

NEED_SQL = (
    "(1 - q.confidence) + 0.5 * (q.answers > 1)::INTEGER + 0.25 * coalesce((5 - r.rating) / 4.0, 0)"
)
OTHERS_SHOWN = 20


@dataclass(frozen=True)
class QueueFilter:
    """Which items: by predicted class, by model (name or hash prefix), by the day served
    (``since``/``until`` inclusive), and the models a reviewer's key may see."""

    label: str | None = None
    model: str | None = None
    since: date | None = None
    until: date | None = None
    allowed_models: frozenset[str] = frozenset({"*"})

    def sql(self) -> tuple[str, list]:
        """A condition on the predictions table's columns, with its parameters."""
        clauses, params = ["answered", "role <> 'shadow'"], []
        if self.label is not None:
            clauses.append("predicted = ?")
            params.append(self.label)
        if self.model is not None:
            clauses.append("(model_name = ? OR starts_with(model_hash, ?))")
            params += [self.model, self.model.lower()]
        if self.since is not None:
            clauses.append("received_at >= ?")
            params.append(datetime.combine(self.since, datetime.min.time()))
        if self.until is not None:
            clauses.append("received_at < ?")
            params.append(datetime.combine(self.until + timedelta(days=1), datetime.min.time()))
        if "*" not in self.allowed_models:
            clauses.append("list_contains(?, model_name)")
            params.append(sorted(self.allowed_models))
        return " AND ".join(clauses), params


@dataclass(frozen=True)
class ReviewItem:
    prediction_id: str
    input_hash: str
    received_at: datetime
    model_name: str
    model_hash: str
    role: str
    predicted: str
    confidence: float
    served: int  # times this input was answered
    disagreement: bool
    rating: int | None
    need: float
    #: a table row's features by column (None for images)
    features: dict | None = None
    #: this input's other predictions: model, role, label, confidence, when
    others: list[dict] = field(default_factory=list)
    #: for images: whether the bytes were kept (within [review] limits)
    kept: bool = False

    @property
    def reasons(self) -> list[str]:
        said = [f"confidence {self.confidence:.2f}"]
        if self.disagreement:
            labels = sorted({self.predicted, *(o["predicted"] for o in self.others)})
            said.append(f"models disagree: {', '.join(labels)}")
        if self.rating is not None:
            said.append(f"rated {self.rating}/5")
        return said


@dataclass(frozen=True)
class ReviewPage:
    items: list[ReviewItem]
    total: int  # items waiting, all pages
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _per_input(where: str) -> str:
    """Per input: the prediction to review (its least confident answer under the
    filter), how often it was answered, and how many labels all models gave it."""
    return f"""
        SELECT input_hash,
            arg_min(prediction_id, confidence) FILTER (WHERE {where}) AS prediction_id,
            min(confidence) FILTER (WHERE {where}) AS confidence,
            count(*) FILTER (WHERE {where}) AS served,
            count(DISTINCT predicted) AS answers
        FROM served_predictions
        WHERE input_hash NOT IN (SELECT input_hash FROM served_reviews)
        GROUP BY input_hash"""


_RATED = (
    "SELECT p.input_hash, min(r.rating) AS rating FROM served_ratings r"
    " JOIN served_predictions p USING (prediction_id) WHERE p.answered GROUP BY ALL"
)


def review_queue(
    config: ProjectConfig,
    store: Store,
    *,
    filters: QueueFilter = QueueFilter(),
    page: int = 1,
    page_size: int | None = None,
) -> ReviewPage:
    """One page of the queue, neediest first."""
    size = page_size or config.review.page_size
    page = max(1, page)
    where, params = filters.sql()
    with served_views(config, store) as conn:
        rows = conn.execute(
            f"""WITH q AS ({_per_input(where)}), r AS ({_RATED})
            SELECT q.prediction_id, {NEED_SQL} AS need, q.served, q.answers, r.rating,
                count(*) OVER () AS total
            FROM q LEFT JOIN r USING (input_hash)
            WHERE q.served > 0
            ORDER BY need DESC, q.prediction_id LIMIT ? OFFSET ?""",
            [*params, *params, *params, size, (page - 1) * size],
        ).fetchall()
        total = rows[0][5] if rows else _count(conn, where, params)
        scores = {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}
        items = _details(config, conn, list(scores), scores)
    return ReviewPage(items, int(total), page, size)


def _count(conn, where: str, params: list) -> int:
    (n,) = conn.execute(
        f"SELECT count(*) FROM ({_per_input(where)}) q WHERE q.served > 0", params * 3
    ).fetchone()
    return int(n)


def review_items(
    config: ProjectConfig, store: Store, prediction_ids: list[str]
) -> list[ReviewItem]:
    """The items of these answered predictions (any that does not exist is left out),
    whether or not they are still waiting."""
    with served_views(config, store) as conn:
        rows = conn.execute(
            f"""WITH q AS (
                SELECT p.prediction_id, p.input_hash, p.confidence,
                    (SELECT count(*) FROM served_predictions s
                     WHERE s.input_hash = p.input_hash AND s.answered) AS served,
                    (SELECT count(DISTINCT predicted) FROM served_predictions s
                     WHERE s.input_hash = p.input_hash) AS answers
                FROM served_predictions p
                WHERE p.answered AND list_contains(?, p.prediction_id)),
            r AS ({_RATED})
            SELECT q.prediction_id, {NEED_SQL}, q.served, q.answers, r.rating
            FROM q LEFT JOIN r USING (input_hash)""",
            [list(prediction_ids)],
        ).fetchall()
        scores = {r[0]: (r[1], r[2], r[3], r[4]) for r in rows}
        return _details(config, conn, [p for p in prediction_ids if p in scores], scores)


def _details(config: ProjectConfig, conn, ids: list[str], scores: dict) -> list[ReviewItem]:
    """Items for ``ids`` (in that order): the prediction, its input, its other answers."""
    if not ids:
        return []
    rows = conn.execute(
        "SELECT prediction_id, input_hash, received_at, model_name, model_hash, role,"
        " predicted, confidence, features FROM served_predictions"
        " WHERE answered AND list_contains(?, prediction_id)",
        [ids],
    ).fetchall()
    found = {r[0]: r for r in rows}
    hashes = sorted({r[1] for r in rows})
    others: dict[str, list[dict]] = {h: [] for h in hashes}
    for pid, input_hash, received, name, model_hash, role, predicted, confidence in conn.execute(
        "SELECT prediction_id, input_hash, received_at, model_name, model_hash, role,"
        " predicted, confidence FROM served_predictions WHERE list_contains(?, input_hash)"
        " QUALIFY row_number() OVER (PARTITION BY input_hash ORDER BY received_at DESC) <= ?"
        " ORDER BY received_at DESC",
        [hashes, OTHERS_SHOWN + 1],
    ).fetchall():
        others[input_hash].append(
            {"prediction_id": pid, "model_name": name, "model_hash": model_hash, "role": role,
             "predicted": predicted, "confidence": confidence, "received_at": received}
        )  # fmt: skip
    images = config.data.kind == "images"
    items = []
    for pid in ids:
        if pid not in found:
            continue
        _, input_hash, received, name, model_hash, role, predicted, confidence, features = found[
            pid
        ]
        need, served, answers, rating = scores[pid]
        items.append(
            ReviewItem(
                pid,
                input_hash,
                received,
                name,
                model_hash,
                role,
                predicted,
                confidence,
                int(served),
                answers > 1,
                None if rating is None else int(rating),
                float(need),
                features=None if images else json.loads(features),
                others=[o for o in others[input_hash] if o["prediction_id"] != pid][:OTHERS_SHOWN],
                kept=images and _is_kept(config, input_hash),
            )  # fmt: skip
        )
    return items


def _is_kept(config: ProjectConfig, input_hash: str) -> bool:
    return (config.served_inputs_dir / input_hash[:2] / input_hash).is_file()
