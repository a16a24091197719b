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

__all__ = ["QueueFilter", "ReviewItem", "ReviewPage", "review_items", "review_queue"]

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
    #: users' ratings of this input's predictions: (rating, comment or None), newest first
    comments: list[tuple[int, str | None]] = field(default_factory=list)

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


_NEED = "(1 - confidence) + 0.5 * disagreement::INTEGER + 0.25 * coalesce((5 - rating) / 4.0, 0)"
#: (input hash, need, times served, disagreement, lowest rating) per waiting input
_Ranked = list[tuple[str, float, int, bool, int | None]]


def _ranked_by_scan(conn, filters: QueueFilter, limit: int, offset: int) -> tuple[_Ranked, int]:
    """The queue under filters: every served prediction aggregated per input."""
    where, params = filters.sql()
    rows = conn.execute(
        f"""WITH rated AS (
                SELECT prediction_id, min(rating) AS rating FROM served_ratings GROUP BY ALL),
            q AS (
                SELECT input_hash,
                    min(confidence) FILTER (WHERE {where}) AS confidence,
                    count(*) FILTER (WHERE {where}) AS served,
                    min(predicted) <> max(predicted) AS disagreement,
                    min(rating) FILTER (WHERE answered) AS rating
                FROM served_predictions LEFT JOIN rated USING (prediction_id)
                WHERE input_hash NOT IN (SELECT input_hash FROM served_reviews)
                GROUP BY input_hash)
            SELECT input_hash, {_NEED} AS need, served, disagreement, rating,
                count(*) OVER () AS total
            FROM q WHERE served > 0 ORDER BY need DESC, input_hash LIMIT ? OFFSET ?""",
        [*params, *params, limit, offset],
    ).fetchall()
    if rows:
        return [r[:5] for r in rows], int(rows[0][5])
    (total,) = conn.execute(
        f"SELECT count(DISTINCT input_hash) FROM served_predictions WHERE {where}"
        " AND input_hash NOT IN (SELECT input_hash FROM served_reviews)",
        params,
    ).fetchone()
    return [], int(total)


#: what the segments not yet ingested add to each input they touch
_PENDING_INPUTS = """
    pending_rated AS (
        SELECT p.input_hash, min(r.rating) AS rating
        FROM pending_ratings r JOIN (
            SELECT prediction_id, input_hash, answered FROM pending_predictions
            UNION ALL
            SELECT prediction_id, input_hash, answered FROM main.predictions
            WHERE prediction_id IN (SELECT prediction_id FROM pending_ratings)
        ) p USING (prediction_id)
        WHERE p.answered GROUP BY ALL),
    pending_inputs AS (
        SELECT input_hash,
            min(confidence) FILTER (WHERE answered AND role <> 'shadow') AS confidence,
            count(*) FILTER (WHERE answered AND role <> 'shadow') AS served,
            min(predicted) AS min_label, max(predicted) AS max_label,
            NULL::TINYINT AS rating, false AS reviewed
        FROM pending_predictions GROUP BY ALL
        UNION ALL SELECT input_hash, NULL, 0, NULL, NULL, rating, false FROM pending_rated
        UNION ALL SELECT DISTINCT input_hash, NULL, 0, NULL, NULL, NULL, true
        FROM pending_reviews)"""


def _pending_tables(conn) -> int:
    """What the pending segments add, computed once per page into temp tables
    (``pending_state``, ``touched_inputs``); returns how many inputs they touch."""
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE pending_state AS WITH {_PENDING_INPUTS}"
        " SELECT * FROM pending_inputs"
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE touched_inputs AS"
        " SELECT DISTINCT input_hash FROM pending_state"
    )
    (touched,) = conn.execute("SELECT count(*) FROM touched_inputs").fetchone()
    return int(touched)


_STATE = "input_hash, confidence, served, min_label, max_label, rating, reviewed"


def _merged(stored: str) -> str:
    return f"""merged AS (
        SELECT input_hash, min(confidence) AS confidence, sum(served) AS served,
            min(min_label) <> max(max_label) AS disagreement, min(rating) AS rating,
            bool_or(reviewed) AS reviewed
        FROM ({stored} UNION ALL SELECT * FROM pending_state) GROUP BY input_hash)"""


def _ranked_from_state(conn, limit: int, offset: int) -> tuple[_Ranked, int]:
    """The unfiltered queue from the store's per-input state (``review_inputs``, rebuilt
    at every ingestion) merged with what the pending segments add. Exact: pending rows
    only raise an input's need or take it out of the queue, so the page is among the
    stored inputs that rank highest (as many more as pending inputs) and those touched."""
    touched = _pending_tables(conn)
    stored = f"""(SELECT {_STATE} FROM main.review_inputs
            WHERE NOT reviewed AND served > 0 ORDER BY need DESC, input_hash LIMIT ?)
        UNION
        (SELECT {_STATE} FROM main.review_inputs
            WHERE input_hash IN (SELECT input_hash FROM touched_inputs))"""
    rows = conn.execute(
        f"""WITH {_merged(stored)}
        SELECT input_hash, {_NEED} AS need, served, disagreement, rating FROM merged
        WHERE NOT reviewed AND served > 0 ORDER BY need DESC, input_hash LIMIT ? OFFSET ?""",
        [offset + limit + touched, limit, offset],
    ).fetchall()
    touched_stored = f"""SELECT {_STATE} FROM main.review_inputs
        WHERE input_hash IN (SELECT input_hash FROM touched_inputs)"""
    (total,) = conn.execute(
        f"""WITH {_merged(touched_stored)}
        SELECT (SELECT count(*) FROM main.review_inputs WHERE NOT reviewed AND served > 0)
            - (SELECT count(*) FROM main.review_inputs WHERE NOT reviewed AND served > 0
               AND input_hash IN (SELECT input_hash FROM touched_inputs))
            + (SELECT count(*) FROM merged WHERE NOT reviewed AND served > 0)"""
    ).fetchone()
    return [tuple(r) for r in rows], int(total)


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
    with served_views(config, store) as conn:
        if filters == QueueFilter():
            ranked, total = _ranked_from_state(conn, size, (page - 1) * size)
        else:
            ranked, total = _ranked_by_scan(conn, filters, size, (page - 1) * size)
        where, params = filters.sql()
        scores = {r[0]: r[1:] for r in ranked}
        items = _details(config, conn, scores, where=where, params=params)
    return ReviewPage(items, total, page, size)


def review_items(
    config: ProjectConfig, store: Store, prediction_ids: list[str]
) -> list[ReviewItem]:
    """The items of these answered predictions (any that does not exist is left out),
    whether or not they are still waiting."""
    with served_views(config, store) as conn:
        rows = conn.execute(
            f"""WITH asked AS (
                SELECT prediction_id, input_hash FROM served_predictions
                WHERE answered AND prediction_id IN (SELECT unnest(?))),
            rated AS (
                SELECT prediction_id, min(rating) AS rating FROM served_ratings GROUP BY ALL),
            q AS (
                SELECT input_hash,
                    min(confidence) FILTER (WHERE answered AND role <> 'shadow') AS confidence,
                    count(*) FILTER (WHERE answered AND role <> 'shadow') AS served,
                    min(predicted) <> max(predicted) AS disagreement,
                    min(rating) FILTER (WHERE answered) AS rating
                FROM served_predictions LEFT JOIN rated USING (prediction_id)
                WHERE input_hash IN (SELECT input_hash FROM asked) GROUP BY input_hash)
            SELECT a.prediction_id, input_hash, {_NEED}, served, disagreement, rating
            FROM asked a JOIN q USING (input_hash)""",
            [list(prediction_ids)],
        ).fetchall()
        by_id: dict[str, ReviewItem] = {}
        while rows:  # one item per input per pass: two asked ids may share an input
            chosen = {r[1]: r[0] for r in rows}
            scores = {r[1]: r[2:] for r in rows}
            for item in _details(config, conn, scores, where="true", params=[], chosen=chosen):
                by_id[item.prediction_id] = item
            rows = [r for r in rows if r[0] not in by_id and r[0] not in chosen.values()]
    return [by_id[p] for p in prediction_ids if p in by_id]


def _details(
    config: ProjectConfig, conn, scores: dict[str, tuple], *, where: str, params: list,
    chosen: dict[str, str] | None = None,
) -> list[ReviewItem]:  # fmt: skip
    """Items for the inputs in ``scores`` (in that order), from one read of their rows:
    the prediction to review (``chosen``'s, else the input's least confident answer
    under the filter ``where``), the input, its other answers and its ratings."""
    if not scores:
        return []
    rows = conn.execute(
        "SELECT prediction_id, input_hash, received_at, model_name, model_hash, role,"
        f" predicted, confidence, features, ({where}) AS eligible FROM served_predictions"
        " WHERE input_hash IN (SELECT unnest(?)) ORDER BY received_at DESC, prediction_id",
        [*params, list(scores)],
    ).fetchall()
    by_input: dict[str, list[tuple]] = {h: [] for h in scores}
    for row in rows:
        by_input[row[1]].append(row)
    ratings: dict[str, list] = {}
    for pid, rating, comment in conn.execute(
        "SELECT prediction_id, rating, comment FROM served_ratings"
        " WHERE prediction_id IN (SELECT unnest(?)) ORDER BY received_at DESC",
        [[r[0] for r in rows]],
    ).fetchall():
        ratings.setdefault(pid, []).append((int(rating), comment))
    images = config.data.kind == "images"
    items = []
    for input_hash, (need, served, disagreement, rating) in scores.items():
        answers = by_input[input_hash]
        if chosen is not None:
            mine = [r for r in answers if r[0] == chosen[input_hash]]
        else:
            mine = sorted((r for r in answers if r[9]), key=lambda r: (r[7], r[0]))[:1]
        if not mine:
            continue
        pid, _, received, name, model_hash, role, predicted, confidence, features, _ = mine[0]
        others = [
            {"prediction_id": r[0], "model_name": r[3], "model_hash": r[4], "role": r[5],
             "predicted": r[6], "confidence": r[7], "received_at": r[2]}
            for r in answers if r[0] != pid
        ]  # fmt: skip
        said = [c for r in answers for c in ratings.get(r[0], [])]
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
                bool(disagreement),
                None if rating is None else int(rating),
                float(need),
                features=None if images else json.loads(features),
                others=others[:OTHERS_SHOWN],
                kept=images and _is_kept(config, input_hash),
                comments=said[:OTHERS_SHOWN],
            )  # fmt: skip
        )
    return items


def _is_kept(config: ProjectConfig, input_hash: str) -> bool:
    return (config.served_inputs_dir / input_hash[:2] / input_hash).is_file()
