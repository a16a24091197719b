"""The status report: one self-contained HTML file (images inlined), plus Markdown.

Two audiences: the technical part is for the ML engineer (leaderboard, gates, confusion,
class bias, history); the client part says the same in plain words, with next steps
derived from the findings.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mllife.evaluation.candidate import CandidateEvaluation
from mllife.evaluation.test_budget import SealedSetWear
from mllife.promotion.challenger import Challenger
from mllife.reporting.html import image_tag as _img
from mllife.reporting.html import table as _table
from mllife.reporting.plots import metric_history_png
from mllife.storage.files import write_atomically

__all__ = ["StatusReport", "describe_training", "in_words", "write_status_report"]


def in_words(share: float) -> str:
    """0.93 -> 'about 9 in 10'; 0.97 -> 'about 19 in 20'."""
    if share >= 0.995:
        return "more than 99 in 100"
    if share >= 0.95:
        return f"about {round(share * 20)} in 20"
    return f"about {round(share * 10)} in 10"


@dataclass(frozen=True)
class StatusReport:
    path: Path
    markdown: str


def _next_steps(best: CandidateEvaluation) -> list[str]:
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
    return steps or ["No weak spot stands out; keep collecting production examples."]


def describe_training(spec) -> str:
    """How a candidate was trained, in a few words (the leaderboard's last column)."""
    parts = []
    if spec.weights:
        parts.append(f"pretrained {spec.architecture} ({spec.weights})")
    if spec.kind == "embedding":
        parts.append(f"embeddings + {(spec.estimator or 'LogisticRegression').split('.')[-1]}")
    augment = spec.augment.model_dump() if spec.augment is not None else {}
    shown = {
        "crop": lambda v: f"crop >= {v:g}",
        "hflip": lambda v: "h-flip",
        "vflip": lambda v: "v-flip",
        "rotation": lambda v: f"rotation +-{v:g} deg",
        "color_jitter": lambda v: f"colour jitter {v:g}",
    }
    steps = [shown[k](v) for k, v in augment.items() if v]
    if steps:
        parts.append("augmented: " + ", ".join(steps))
    return "; ".join(parts)


def _leaderboard(evaluations: list[CandidateEvaluation], notes: dict[str, str]) -> tuple[str, str]:
    rows = []
    for e in sorted(evaluations, key=lambda e: -e.validation.macro_f1):
        v, t = e.validation, e.test
        rows.append(
            [
                e.ref.name,
                f"{v.accuracy:.4f} {v.interval_text('accuracy')}",
                f"{v.macro_f1:.4f} {v.interval_text('macro_f1')}",
                f"{t.accuracy:.4f} {t.interval_text('accuracy')}",
                f"{t.macro_f1:.4f} {t.interval_text('macro_f1')}",
                "yes" if e.agreement.passed else "no",
                e.ref.model_hash[:12],
                notes.get(e.ref.name, ""),
            ]
        )
    header = [
        "candidate",
        "val accuracy [95% CI]",
        "val macro F1",
        "test accuracy",
        "test macro F1",
        "val/test agree",
        "model hash",
        "training",
    ]
    return _table(header, rows)


def _gate_table(challenger: Challenger, descriptions: dict[str, str]) -> tuple[str, str]:
    rows = [
        [
            g.name,
            descriptions.get(g.name, ""),
            g.split or "",
            "pass" if g.passed else "FAIL",
            "" if g.observed is None else f"{g.observed:.4f}",
            "" if g.threshold is None else f"{g.threshold:.4f}",
            g.reason,
        ]
        for g in challenger.decision.gates
    ]
    header = ["gate", "what it asks", "reads", "verdict", "observed", "threshold", "reason"]
    return _table(header, rows)


def _what_changed(challenger: Challenger) -> str:
    if challenger.comparison is not None:
        c = challenger.comparison
        split = challenger.decision.measurements.get("gate_split", "validation")
        return (
            f"Compared with the model deployed before, it gets {c.deltas['accuracy']:+.1%}"
            f" of the {split} examples right ({len(c.wrong_to_right)} newly right,"
            f" {len(c.right_to_wrong)} newly wrong)."
        )
    if challenger.decision.first_run:
        return "This is the first model: there is no earlier deployed model to compare with."
    return "The best model is the one already deployed: nothing changed."


def _outcome(challenger: Challenger, action: str) -> str:
    return {
        "promoted": f"The new model '{challenger.evaluation.ref.name}' is now the deployed model.",
        "unchanged": "The deployed model stays as it is.",
        "staged": f"The new model '{challenger.evaluation.ref.name}' passed every check and"
        " now answers part of the live traffic (shadow or canary) beside the deployed model;"
        " it takes over only if it does as well on that traffic.",
        "not promoted": "The new model was NOT deployed: " + challenger.decision.summary(),
    }[action]


def _human_line(challenger: Challenger) -> str:
    human = challenger.decision.measurements.get("human_accuracy")
    if not human:
        return ""
    accuracy = challenger.evaluation.validation.accuracy
    return (
        f"People labelling the same examples agree {human:.0%} of the time (human level);"
        f" the model reaches {accuracy / human:.0%} of that."
    )


@dataclass(frozen=True)
class _ClientPart:
    """The client's part of the report, shared by the HTML and the Markdown."""

    n_classes: int
    test_accuracy: float
    lines: list[str]  # plain sentences after the first two
    steps: list[str]

    def markdown(self) -> str:
        return "\n".join(
            [
                "## Status for the client",
                f"- The model sorts images into {self.n_classes} classes.",
                f"- On new images it had never seen, it is right"
                f" {in_words(self.test_accuracy)} times ({self.test_accuracy:.1%}).",
                *[f"- {line}" for line in self.lines],
                "- Next steps: " + " ".join(self.steps),
            ]
        )

    def html(self) -> str:
        items = "".join(f"<li>{html.escape(line)}</li>" for line in self.lines)
        steps = "".join(f"<li>{html.escape(s)}</li>" for s in self.steps)
        return f"""<section id="client"><h2>Status for the client</h2><ul>
<li>The model sorts images into {self.n_classes} classes.</li>
<li>On new images it had never seen, it is right <b>{in_words(self.test_accuracy)}</b> times
({self.test_accuracy:.1%}).</li>{items}</ul>
<h3>Next steps</h3><ul>{steps}</ul></section>"""


def _client_part(challenger: Challenger, action: str, problems, monitoring) -> _ClientPart:
    best = challenger.evaluation
    human = _human_line(challenger)
    lines = [_what_changed(challenger), *([human] if human else [])]
    lines += list(problems.client_lines) if problems else []
    lines += monitoring.client_lines if monitoring else []
    lines.append(_outcome(challenger, action))
    steps = _next_steps(best)
    steps += problems.next_steps if problems else []
    steps += monitoring.next_steps if monitoring else []
    return _ClientPart(len(best.validation.labels), best.test.accuracy, lines, steps)


def _data_sentence(data: dict[str, Any], wear: SealedSetWear) -> str:
    reads = wear.describe()
    return (
        f"Data version {data['data_version']}: {data['n_files']} files, {data['n_clean']} kept,"
        f" {data['n_dropped']} dropped. Split sizes: {data['split_sizes']}."
        f" {reads[:1].upper()}{reads[1:]}."
    )


_STYLE = """<style>body{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem}
.fail{color:#b00}.tiles{display:flex;flex-wrap:wrap;gap:.5rem}
.tile{margin:0;padding:.3rem;border:1px solid #ddd;font-size:.75rem;max-width:12rem}
.thumb{image-rendering:pixelated;display:block;margin:auto}</style>"""


def _technical_html(
    challenger: Challenger, tables: dict[str, str], data_sentence: str, history_png, monitoring
) -> str:
    best, decision = challenger.evaluation, challenger.decision
    bias = [p.sentence() for p in best.validation.asymmetric_pairs]
    class_rows = [
        [c.label, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", f"{c.support:g}"]
        for c in best.validation.per_class
    ]
    classes_html, _ = _table(["class", "precision", "recall", "F1", "support"], class_rows)
    confusion = best.validation.plot_confusion(title=f"{best.ref.name}: validation")
    name = html.escape(best.ref.name)
    bias_items = "".join(f"<li>{html.escape(s)}</li>" for s in bias) or "<li>none</li>"
    return f"""<section id="technical"><h2>Technical report</h2>
<p>{html.escape(data_sentence)}</p>
<h3>Leaderboard</h3>{tables["leaderboard"]}
<h3>Promotion decision</h3><p>{html.escape(decision.summary())}</p>{tables["gates"]}
<h3>Challenger '{name}' on validation</h3>
{_img(confusion, "confusion matrix")}
{classes_html}
<h3>Class bias</h3><ul>{bias_items}</ul>
<h3>Validation accuracy across model versions</h3>{_img(history_png, "metric history")}
{monitoring.html if monitoring else ""}
</section>"""


def write_status_report(
    *,
    reports_dir: Path,
    run_id: str | None,
    data: dict[str, Any],
    evaluations: list[CandidateEvaluation],
    challenger: Challenger,
    action: str,
    test_wear: SealedSetWear,
    history,
    gallery: str = "",
    problems=None,
    monitoring=None,
    gate_descriptions: dict[str, str] | None = None,
    training_notes: dict[str, str] | None = None,
) -> StatusReport:
    """Write ``status-<run_id>.html`` under ``reports_dir``; return its path and the
    Markdown summary (client part, then the technical part)."""
    board_html, board_md = _leaderboard(evaluations, training_notes or {})
    gates_html, gates_md = _gate_table(challenger, gate_descriptions or {})
    client = _client_part(challenger, action, problems, monitoring)
    if test_wear.worn:
        client.steps.append(
            "Add fresh labelled data: the test set has been used too often to trust its"
            " numbers alone."
        )
    data_sentence = _data_sentence(data, test_wear)
    tech_md = "\n\n".join(
        [
            "## Technical report",
            data_sentence,
            board_md,
            f"**Promotion decision**: {challenger.decision.summary()}",
            gates_md,
            *(["**Known problems**", problems.markdown] if problems and problems.markdown else []),
            *([monitoring.markdown] if monitoring else []),
        ]
    )
    history_png = metric_history_png(history, metric="accuracy", split="validation")
    technical = _technical_html(
        challenger, {"leaderboard": board_html, "gates": gates_html}, data_sentence,
        history_png, monitoring,
    )  # fmt: skip
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mllife status report</title>
{_STYLE}</head><body>
<h1>mllife status report</h1><p>{when} · run {html.escape(str(run_id))}</p>
{client.html()}
{technical}
{problems.html if problems else ""}
{gallery}
</body></html>
"""
    path = reports_dir / f"status-{run_id or 'adhoc'}.html"
    write_atomically(path, page.encode("utf-8"))
    return StatusReport(path=path, markdown=client.markdown() + "\n\n" + tech_md)
