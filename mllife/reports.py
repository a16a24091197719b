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

from mllife._files import write_atomically
from mllife._html import image_tag as _img
from mllife._html import table as _table
from mllife.deployment import Challenger
from mllife.evaluation import CandidateEvaluation
from mllife.plots import metric_history_png

__all__ = ["StatusReport", "in_words", "write_status_report"]


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


def write_status_report(
    *,
    reports_dir: Path,
    run_id: str | None,
    data: dict[str, Any],
    evaluations: list[CandidateEvaluation],
    challenger: Challenger,
    action: str,
    test_reads: int,
    history,
    gallery: str = "",
    problems=None,
    monitoring=None,
) -> StatusReport:
    best = challenger.evaluation
    decision = challenger.decision
    test_acc = best.test.accuracy
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    leaderboard_rows = []
    for e in sorted(evaluations, key=lambda e: -e.validation.macro_f1):
        lo, hi = e.validation.intervals["accuracy"]
        leaderboard_rows.append(
            [
                e.ref.name,
                f"{e.validation.accuracy:.4f} [{lo:.3f}, {hi:.3f}]",
                f"{e.validation.macro_f1:.4f}",
                f"{e.test.accuracy:.4f}",
                f"{e.test.macro_f1:.4f}",
                "yes" if e.agreement.passed else "no",
                e.ref.model_hash[:12],
            ]
        )
    board_html, board_md = _table(
        [
            "candidate",
            "val accuracy [95% CI]",
            "val macro F1",
            "test accuracy",
            "test macro F1",
            "val/test agree",
            "model hash",
        ],
        leaderboard_rows,
    )
    gate_rows = [
        [
            g.name,
            "pass" if g.passed else "FAIL",
            "" if g.observed is None else f"{g.observed:.4f}",
            "" if g.threshold is None else f"{g.threshold:.4f}",
            g.reason,
        ]
        for g in decision.gates
    ]
    gates_html, gates_md = _table(["gate", "verdict", "observed", "threshold", "reason"], gate_rows)
    class_rows = [
        [c.label, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", f"{c.support:g}"]
        for c in best.validation.per_class
    ]
    classes_html, _ = _table(["class", "precision", "recall", "F1", "support"], class_rows)
    bias = [p.sentence() for p in best.validation.asymmetric_pairs]

    if challenger.comparison is not None:
        c = challenger.comparison
        changed = (
            f"Compared with the model deployed before, it gets {c.deltas['accuracy']:+.1%}"
            f" of the validation examples right ({len(c.wrong_to_right)} newly right,"
            f" {len(c.right_to_wrong)} newly wrong)."
        )
    elif decision.first_run:
        changed = "This is the first model: there is no earlier deployed model to compare with."
    else:
        changed = "The best model is the one already deployed: nothing changed."
    outcome = {
        "promoted": f"The new model '{best.ref.name}' is now the deployed model.",
        "unchanged": "The deployed model stays as it is.",
        "not promoted": "The new model was NOT deployed: " + decision.summary(),
    }[action]
    steps = _next_steps(best)
    problem_lines = list(problems.client_lines) if problems else []
    steps += problems.next_steps if problems else []
    problem_lines += monitoring.client_lines if monitoring else []
    steps += monitoring.next_steps if monitoring else []
    human = decision.measurements.get("human_accuracy")
    human_line = (
        ""
        if not human
        else (
            f"People labelling the same examples agree {human:.0%} of the time (human level);"
            f" the model reaches {best.validation.accuracy / human:.0%} of that."
        )
    )
    client_md = "\n".join(
        [
            "## Status for the client",
            f"- The model sorts images into {len(best.validation.labels)} classes.",
            f"- On new images it had never seen, it is right {in_words(test_acc)} times"
            f" ({test_acc:.1%}).",
            f"- {changed}",
            *([f"- {human_line}"] if human_line else []),
            *[f"- {line}" for line in problem_lines],
            f"- {outcome}",
            "- Next steps: " + " ".join(steps),
        ]
    )
    tech_md = "\n\n".join(
        [
            "## Technical report",
            f"Data version `{data['data_version']}`: {data['n_files']} files,"
            f" {data['n_clean']} kept, {data['n_dropped']} dropped."
            f" Splits: {data['split_sizes']}."
            f" The test set has been read {test_reads} times.",
            board_md,
            f"**Promotion decision**: {decision.summary()}",
            gates_md,
            *(["**Known problems**", problems.markdown] if problems and problems.markdown else []),
            *([monitoring.markdown] if monitoring else []),
        ]
    )
    history_png = metric_history_png(history, metric="accuracy", split="validation")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mllife status report</title>
<style>body{{font-family:sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse;margin:1rem 0}}td,th{{border:1px solid #ccc;padding:.3rem .6rem}}
.fail{{color:#b00}}.tiles{{display:flex;flex-wrap:wrap;gap:.5rem}}
.tile{{margin:0;padding:.3rem;border:1px solid #ddd;font-size:.75rem;max-width:12rem}}
.thumb{{image-rendering:pixelated;display:block;margin:auto}}</style></head><body>
<h1>mllife status report</h1><p>{when} · run {html.escape(str(run_id))}</p>
<section id="client"><h2>Status for the client</h2><ul>
<li>The model sorts images into {len(best.validation.labels)} classes.</li>
<li>On new images it had never seen, it is right <b>{in_words(test_acc)}</b> times
({test_acc:.1%}).</li><li>{html.escape(changed)}</li>
{f"<li>{html.escape(human_line)}</li>" if human_line else ""}
{"".join(f"<li>{html.escape(line)}</li>" for line in problem_lines)}
<li>{html.escape(outcome)}</li></ul>
<h3>Next steps</h3><ul>{"".join(f"<li>{html.escape(s)}</li>" for s in steps)}</ul></section>
<section id="technical"><h2>Technical report</h2>
<p>Data version <code>{html.escape(data["data_version"])}</code>: {data["n_files"]} files,
{data["n_clean"]} kept, {data["n_dropped"]} dropped. Split sizes: {data["split_sizes"]}.
The sealed test set has been read {test_reads} times.</p>
<h3>Leaderboard</h3>{board_html}
<h3>Promotion decision</h3><p>{html.escape(decision.summary())}</p>{gates_html}
<h3>Challenger '{html.escape(best.ref.name)}' on validation</h3>
{_img(best.validation.plot_confusion(title=f"{best.ref.name}: validation"), "confusion matrix")}
{classes_html}
<h3>Class bias</h3><ul>{"".join(f"<li>{html.escape(s)}</li>" for s in bias) or "<li>none</li>"}</ul>
<h3>Validation accuracy across model versions</h3>{_img(history_png, "metric history")}
{monitoring.html if monitoring else ""}
</section>
{problems.html if problems else ""}
{gallery}
</body></html>
"""
    path = reports_dir / f"status-{run_id or 'adhoc'}.html"
    write_atomically(path, page.encode("utf-8"))
    return StatusReport(path=path, markdown=client_md + "\n\n" + tech_md)
