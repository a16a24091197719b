"""What a reviewer does with a queue item, one implementation behind ``/review`` and
``mllife review``.

- **label** (confirm or correct): a feedback row bound to the prediction, written to
  the same feedback log ``POST /feedback`` writes, so served quality counts it exactly
  as it counts any feedback (the newest label of a prediction counts, once);
- **pattern**: the input becomes a pattern of a known problem (``problem_files``);
- **skip**: the item leaves the queue, nothing else.

Each action is also a review row (who, what, when), which takes the input out of the
queue. Rows go to the server's segment logs and are flushed before the action returns:
the next page a reviewer loads no longer shows the item. Concurrent reviewers of one
item cannot double-count it: served quality counts one label per prediction, a pattern
is added to a problem once, and the store ingests each segment exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mllife._errors import ProblemError, ReviewError
from mllife.config.project import ProjectConfig
from mllife.monitoring.kept_inputs import kept_input
from mllife.review.problem_files import ServedPattern, add_served_patterns
from mllife.review.queue import ReviewItem, review_items
from mllife.storage.store import Store

__all__ = ["ReviewDesk", "ReviewError"]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class ReviewDesk:
    config: ProjectConfig
    store: Store
    feedback_log: object  # a SegmentLog (FEEDBACK_SCHEMA)
    review_log: object  # a SegmentLog (REVIEW_SCHEMA)
    classes: list[str]

    def items(
        self, prediction_ids: list[str], *, allowed_models=frozenset({"*"})
    ) -> list[ReviewItem]:
        """The items, each checked to exist (404) and to be one the reviewer may see (403)."""
        found = {i.prediction_id: i for i in review_items(self.config, self.store, prediction_ids)}
        missing = [p for p in prediction_ids if p not in found]
        if missing:
            raise ReviewError(f"no served prediction {missing[0]!r}", status=404)
        if "*" not in allowed_models:
            hidden = [i for i in found.values() if i.model_name not in allowed_models]
            if hidden:
                raise ReviewError(
                    f"prediction {hidden[0].prediction_id} was answered by model"
                    f" {hidden[0].model_name!r}, which this key may not use",
                    status=403,
                )
        return [found[p] for p in prediction_ids]

    def _check_label(self, label: str) -> None:
        if label not in self.classes:
            raise ReviewError(f"label {label!r} is not one of {sorted(self.classes)}")

    def _record(self, items, action: str, reviewer: str, *, labels=None, problem=None) -> None:
        now = _now()
        rows = [
            (i.prediction_id, i.input_hash, action, (labels or {}).get(i.prediction_id),
             problem, reviewer, now)
            for i in items
        ]  # fmt: skip
        self.review_log.extend(rows)
        self.review_log.flush()

    def label(self, item: ReviewItem, label: str, *, reviewer: str) -> None:
        """Confirm (``label`` = the prediction) or correct the item's label."""
        self._check_label(label)
        self.feedback_log.extend([(item.prediction_id, label, reviewer, _now())])
        self.feedback_log.flush()
        self._record([item], "label", reviewer, labels={item.prediction_id: label})

    def skip(self, item: ReviewItem, *, reviewer: str) -> None:
        self._record([item], "skip", reviewer)

    def add_to_problem(
        self,
        items: list[ReviewItem],
        *,
        problem: str,
        labels: dict[str, str],
        kind: str,
        reviewer: str,
        description: str | None = None,
    ) -> int:
        """Add the items' inputs to ``problem`` as ``kind`` patterns, each expecting its
        label in ``labels`` (by prediction id); return how many were new."""
        if not items:
            raise ReviewError("choose at least one item to add to a problem")
        patterns = []
        for item in items:
            expected = labels.get(item.prediction_id, item.predicted)
            self._check_label(expected)
            if item.features is not None:
                if self.config.data.pii:
                    raise ReviewError(
                        f"the row of prediction {item.prediction_id} was logged with its pii"
                        f" columns ({', '.join(self.config.data.pii)}) hashed or left out,"
                        " not as it was sent: it cannot become a pattern; add the row to the"
                        " problem's file by hand",
                        status=409,
                    )
                patterns.append(
                    ServedPattern(item.prediction_id, expected, kind, row=item.features)
                )
                continue
            payload = kept_input(self.config.served_inputs_dir, item.input_hash)
            if payload is None:
                raise ReviewError(
                    f"the input of prediction {item.prediction_id} was not kept ([review]"
                    " limits, or it expired): it cannot become a pattern",
                    status=409,
                )
            patterns.append(ServedPattern(item.prediction_id, expected, kind, image=payload))
        try:
            added = add_served_patterns(
                self.config, self.store, problem, patterns, classes=self.classes,
                description=description,
            )  # fmt: skip
        except ProblemError as exc:
            raise ReviewError(str(exc)) from None
        self._record(items, "pattern", reviewer, labels=labels, problem=problem)
        return added
