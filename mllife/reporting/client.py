"""The client's part of the status report: plain sentences, one source for the HTML and
the Markdown, worded for the kind of data (images or table rows), with frequencies a
person can read ("about 49 in 50") and next steps derived from every finding."""

from __future__ import annotations

from dataclasses import dataclass, field

from mllife.evaluation.candidate import CandidateEvaluation
from mllife.promotion.challenger import Challenger

__all__ = ["ClientPart", "NO_WEAK_SPOT", "client_part", "in_words"]

NO_WEAK_SPOT = "No weak spot stands out; keep collecting production examples."

#: denominators people use for frequencies, smallest first
_DENOMINATORS = (10, 20, 50, 100, 1000)


def in_words(share: float) -> str:
    """0.9 -> 'about 9 in 10'; 0.978 -> 'about 49 in 50'; 0.93 -> 'about 93 in 100'.

    The smallest usual denominator whose fraction is within half a percentage point of
    ``share`` (and never rounds a miss away: below 1 it is never "n in n")."""
    if share >= 1.0:
        return "every time"
    if share <= 0.0:
        return "never"
    for d in _DENOMINATORS:
        n = round(share * d)
        if 0 < n < d and abs(n / d - share) <= 0.005:
            return f"about {n} in {d}"
    n = min(max(round(share * 1000), 1), 999)
    return f"about {n} in 1000"


def _nouns(kind: str) -> tuple[str, str]:
    """(plural noun, what the model sorts) for the data kind."""
    return ("images", "images") if kind == "images" else ("rows", "table rows")


def _classes_text(labels) -> str:
    shown = [str(label) for label in labels[:12]]
    more = f" and {len(labels) - 12} more" if len(labels) > 12 else ""
    return ", ".join(shown) + more


def _accuracy_sentence(best: CandidateEvaluation, kind: str) -> str:
    test = best.test
    noun, _ = _nouns(kind)
    interval = test.intervals.get("accuracy")
    band = (
        f"; with 95% confidence between {interval[0]:.1%} and {interval[1]:.1%}" if interval else ""
    )
    often = in_words(test.accuracy)
    times = "" if often in ("every time", "never") else " times"
    return (
        f"On {test.n_samples} new {noun} it had never seen (the sealed test set), it was"
        f" right {often}{times} ({test.accuracy:.1%}{band})."
    )


def _weak_spots(best: CandidateEvaluation) -> list[str]:
    steps = []
    weakest = min(best.validation.per_class, key=lambda c: c.recall)
    if weakest.recall < 0.95:
        steps.append(
            f"Collect more examples of class '{weakest.label}': the model recognises"
            f" {in_words(weakest.recall)} of them."
        )
    for pair in best.validation.asymmetric_pairs[:2]:
        if pair.rate_a_as_b >= 0.05:
            steps.append(
                f"Class '{pair.a}' is often mistaken for '{pair.b}'"
                f" ({pair.rate_a_as_b:.0%} of cases): add examples that tell them apart."
            )
    if not best.agreement.passed:
        steps.append(
            "Results on fresh data differ from the tuning data: review the split and"
            " collect more varied data before relying on the model."
        )
    return steps


def _what_changed(challenger: Challenger, kind: str) -> str:
    noun, _ = _nouns(kind)
    if challenger.comparison is not None:
        c = challenger.comparison
        split = challenger.decision.measurements.get("gate_split", "validation")
        return (
            f"Compared with the model deployed before, on the same {split} {noun} it gets"
            f" {c.deltas['accuracy']:+.1%} of them right ({len(c.wrong_to_right)} newly"
            f" right, {len(c.right_to_wrong)} newly wrong)."
        )
    if challenger.decision.first_run:
        return "This is the first model: there is no earlier deployed model to compare with."
    return "The best model is the one already deployed: nothing changed."


def _outcome(challenger: Challenger, action: str) -> str:
    name = challenger.evaluation.ref.name
    return {
        "promoted": f"The new model '{name}' is now the deployed model.",
        "unchanged": "The deployed model stays as it is.",
        "staged": f"The new model '{name}' passed every check and now answers part of the"
        " live traffic (shadow or canary) beside the deployed model; it takes over only if"
        " it does as well on that traffic.",
        "not promoted": "The new model was NOT deployed: " + challenger.decision.summary(),
    }[action]


def _human_line(challenger: Challenger) -> list[str]:
    human = challenger.decision.measurements.get("human_accuracy")
    if not human:
        return []
    accuracy = challenger.evaluation.validation.accuracy
    return [
        f"People labelling the same examples agree {human:.0%} of the time (human level);"
        f" the model reaches {accuracy / human:.0%} of that."
    ]


@dataclass(frozen=True)
class ClientPart:
    lines: list[str]
    steps: list[str]
    #: the summary card at the top of the page: (what, figure) pairs
    card: list[tuple[str, str]] = field(default_factory=list)


def client_part(
    challenger: Challenger, action: str, *, kind: str, sections, worn_test_set: bool
) -> ClientPart:
    """Every sentence the client reads, and the next steps from every finding (the
    fallback "no weak spot" only when no finding asks for anything)."""
    best = challenger.evaluation
    _, sorts = _nouns(kind)
    lines = [
        f"The model sorts {sorts} into {len(best.validation.labels)} classes:"
        f" {_classes_text(best.validation.labels)}.",
        _accuracy_sentence(best, kind),
        _what_changed(challenger, kind),
        *_human_line(challenger),
    ]
    steps = _weak_spots(best)
    for section in sections:
        lines += section.client_lines
        steps += section.next_steps
    lines.append(_outcome(challenger, action))
    if worn_test_set:
        steps.append(
            "Add fresh labelled data: the test set has been used too often to trust its"
            " numbers alone."
        )
    return ClientPart(lines, steps or [NO_WEAK_SPOT], _card(challenger, action))


def _card(challenger: Challenger, action: str) -> list[tuple[str, str]]:
    """Model, decision, accuracy with its interval, what changed: the page's first look."""
    best = challenger.evaluation
    test = best.test
    interval = test.intervals.get("accuracy")
    band = f" (95%: {interval[0]:.1%} to {interval[1]:.1%})" if interval else ""
    decided = {
        "promoted": "deployed",
        "unchanged": "already deployed",
        "staged": "on trial beside the deployed model",
        "not promoted": "not deployed",
    }[action]
    c = challenger.comparison
    changed = (
        f"{c.deltas['accuracy']:+.1%} accuracy on the same rows ({len(c.wrong_to_right)} newly"
        f" right, {len(c.right_to_wrong)} newly wrong)"
        if c is not None
        else "the first model"
        if challenger.decision.first_run
        else "nothing"
    )
    return [
        ("model", f"{best.ref.name} {best.ref.model_hash[:12]}"),
        ("decision", decided),
        ("accuracy on the sealed test set", f"{test.accuracy:.1%}{band}"),
        ("what changed", changed),
    ]
