"""The status report: one self-contained HTML file (images inlined), plus Markdown for
the Dagster UI, both rendered from the same sections by the templates in ``templates/``.

Two audiences: the client part says in plain words what the model does, how well, what
changed and what to do next (``client.py``); the technical part is for the ML engineer
(data and cleaning, leaderboard, gates, confusion, class bias, history, known problems,
monitoring, deployment and rollout history, the gallery).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from mllife.data.near_duplicates import NearDuplicates
from mllife.evaluation.candidate import CandidateEvaluation
from mllife.evaluation.label_issues import LabelIssues
from mllife.evaluation.test_budget import SealedSetWear
from mllife.promotion.challenger import Challenger
from mllife.reporting.blocks import (
    Bullets,
    Figure,
    Heading,
    Paragraph,
    ReportSection,
    Table,
    Tile,
    Tiles,
    sentence,
)
from mllife.reporting.client import client_part
from mllife.reporting.gallery import thumbnail
from mllife.reporting.plots import confusion_png, metric_history_png
from mllife.reporting.render import render
from mllife.storage.files import write_atomically

__all__ = ["DataFacts", "StatusReport", "describe_training", "write_status_report"]


@dataclass(frozen=True)
class StatusReport:
    path: Path
    markdown: str


@dataclass(frozen=True)
class DataFacts:
    """What the report says about the data: its version, what cleaning kept and dropped
    (every dropped file or row with its reason), and the split sizes."""

    kind: str  # "images" or "table"
    data_version: str
    n_inputs: int
    n_clean: int
    split_sizes: dict[str, int]
    #: one row per dropped input: ``path`` (a file, or "row N" of a table) and ``reason``
    dropped: pl.DataFrame
    #: suspected label errors in the training split (``evaluation.label_issues``)
    label_issues: LabelIssues | None = None
    #: near-duplicates across and within splits (``data.near_duplicates``)
    near_duplicates: NearDuplicates | None = None
    #: the project root: images named by path are shown as thumbnails
    root: Path | None = None


def describe_training(spec, backbone: str | None = None) -> str:
    """How a candidate was trained, in a few words (the leaderboard's last column);
    ``backbone``: where its pretrained tensors came from, as training recorded it."""
    parts = []
    if spec.weights:
        parts.append(backbone or f"pretrained {spec.architecture} ({spec.weights})")
    if spec.kind in ("embedding", "text_encoder"):
        what = "sentence vectors" if spec.kind == "text_encoder" else "embeddings"
        if epochs := spec.params.get("fine_tune_epochs"):
            what = f"fine-tuned ({epochs} epochs) {what}"
        what += " and n-grams" if spec.params.get("combine") else ""
        parts.append(f"{what} + {(spec.estimator or 'LogisticRegression').split('.')[-1]}")
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


class _Footnotes:
    """Long notes out of table cells: a cell gets a mark, the note goes under the table."""

    MARKS = ("*", "†", "‡", "§", "¶")

    def __init__(self) -> None:
        self.notes: dict[str, str] = {}

    def cell(self, report, metric: str) -> str:
        value = f"{report.metrics[metric]:.4f}"
        if report.intervals.get(metric) is not None:
            return f"{value} {report.interval_text(metric)}"
        note = report.interval_text(metric)[1:-1]  # "(no interval: ...)" unwrapped
        if note not in self.notes:
            self.notes[note] = self.MARKS[len(self.notes) % len(self.MARKS)] * (
                1 + len(self.notes) // len(self.MARKS)
            )
        return f"{value} {self.notes[note]}"

    def blocks(self) -> tuple:
        if not self.notes:
            return ()
        return (Paragraph("; ".join(f"{mark} {note}" for note, mark in self.notes.items())),)


def _leaderboard(
    evaluations: list[CandidateEvaluation], notes: dict[str, str], chosen: CandidateEvaluation
) -> tuple:
    """Every candidate on validation; the sealed test figures of the chosen challenger
    only (the others' were never read: choosing by them would wear the test set out).
    The table, then its footnotes."""
    rows, footnotes = [], _Footnotes()
    for e in sorted(evaluations, key=lambda e: -e.validation.macro_f1):
        v = e.validation
        t = chosen.test if e.ref.model_hash == chosen.ref.model_hash else None
        sealed = "sealed"
        rows.append(
            [
                e.ref.name,
                footnotes.cell(v, "accuracy"),
                footnotes.cell(v, "macro_f1"),
                sealed if t is None else footnotes.cell(t, "accuracy"),
                sealed if t is None else footnotes.cell(t, "macro_f1"),
                e.ref.model_hash[:12],
                notes.get(e.ref.name, ""),
            ]
        )
    header = ["candidate", "val accuracy [95% CI]", "val macro F1",
              "test accuracy (challenger only)", "test macro F1", "model hash",
              "training"]  # fmt: skip
    return (Table.of(header, rows), *footnotes.blocks())


def _gate_table(challenger: Challenger, descriptions: dict[str, str]) -> Table:
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
    return Table.of(header, rows)


def _tie_note(challenger: Challenger) -> tuple:
    """Why the challenger won when another candidate scored the same on validation."""
    ranking = challenger.ranking
    tied = [name for name, score in ranking[1:] if score == ranking[0][1]]
    if not tied:
        return ()
    metric = (challenger.evidence or {}).get("basis", {}).get("selection_metric", "score")
    return (
        Paragraph(
            f"{ranking[0][0]} ties with {', '.join(tied)} on validation {metric}"
            f" ({ranking[0][1]:.4f}): the smaller artifact is chosen, since a simpler"
            " model that does as well is not worse."
        ),
    )


def _technical_section(
    challenger: Challenger, board: tuple, gates: Table, history_png: bytes | None
) -> ReportSection:
    best, decision = challenger.evaluation, challenger.decision
    class_rows = [
        [c.label, f"{c.precision:.3f}", f"{c.recall:.3f}", f"{c.f1:.3f}", f"{c.support:g}"]
        for c in best.validation.per_class
    ]
    bias = [p.sentence() for p in best.validation.asymmetric_pairs] or ["none"]
    blocks = (
        Heading("Leaderboard"),
        *board,
        *_tie_note(challenger),
        Heading("Promotion decision"),
        Paragraph(decision.summary()),
        gates,
        Heading(f"Challenger '{best.ref.name}' on validation"),
        Figure(confusion_png(best.validation, title=f"{best.ref.name}: validation"),
               "confusion matrix"),
        Table.of(["class", "precision", "recall", "F1", "support"], class_rows),
        Heading("Class bias"),
        Bullets(tuple(bias)),
        Heading("Validation accuracy across model versions"),
        Figure(history_png, "metric history"),
    )  # fmt: skip
    return ReportSection("technical", "Technical report", blocks)


def _data_section(data: DataFacts, wear: SealedSetWear) -> ReportSection:
    noun = "files" if data.kind == "images" else "rows"
    reads = wear.describe()
    blocks = [
        Paragraph(
            f"Data version {data.data_version}: {data.n_inputs} {noun}, {data.n_clean} kept,"
            f" {data.dropped.height} dropped. {sentence(reads)}."
        ),
        Table.of(["split", noun], [[name, n] for name, n in data.split_sizes.items()]),
        Heading("Cleaning: every dropped input and why"),
    ]
    if data.dropped.height:
        where = "file" if data.kind == "images" else "row"
        rows = data.dropped.select("path", "reason").rows()
        blocks.append(Table.of([where, "reason"], rows, markdown_rows=20))
    else:
        blocks.append(Paragraph(f"Nothing was dropped: every {noun[:-1]} passed cleaning."))
    steps = []
    found = data.label_issues
    if found is not None:
        blocks += [
            Heading("Suspected label errors (training split)"),
            Paragraph(found.describe() + "."),
        ]
        if found.issues:
            rows = [[i.key, i.given, i.suggested, f"{i.quality:.3f}"] for i in found.issues[:30]]
            header = ["file" if data.kind == "images" else "row", "given label",
                      "suggested", "P(given label)"]  # fmt: skip
            blocks.append(Table.of(header, rows, markdown_rows=10))
            blocks += _tiles(data, [(i.key, (f"labelled {i.given}, looks like {i.suggested}",
                                             f"P(given) {i.quality:.3f}", i.key))
                                    for i in found.issues[:20]])  # fmt: skip
            steps.append(
                f"Check the {len(found.issues)} suspected label errors (worst first in the data"
                " section) and fix the labels at the source: they are reported, not dropped."
            )
    near = data.near_duplicates
    if near is not None:
        blocks += [Heading("Near-duplicates"), Paragraph(near.describe() + ".")]
        if near.pairs:
            rows = [[p.first, p.first_split, p.second, p.second_split, f"{p.distance:.4f}"]
                    for p in near.pairs[:30]]  # fmt: skip
            header = ["input", "split", "near-duplicate", "split", "distance"]
            blocks.append(Table.of(header, rows, markdown_rows=10))
            blocks += _tiles(data, [(path, (f"{split}, pair {n + 1}", path))
                                    for n, p in enumerate(near.pairs[:10])
                                    for path, split in ((p.first, p.first_split),
                                                        (p.second, p.second_split))])  # fmt: skip
        if any(near.within.values()):
            steps.append(
                "Near-duplicates within one split weigh twice in training or evaluation:"
                " keep one copy of each (listed in the data section)."
            )
    return ReportSection("data", "Data and cleaning", tuple(blocks), [], steps)


def _tiles(data: DataFacts, items: list[tuple[str, tuple[str, ...]]]) -> list:
    """Thumbnails of the images named (path, caption lines); none for tables."""
    if data.kind != "images" or data.root is None or not items:
        return []
    return [Tiles(tuple(Tile(thumbnail(data.root / path, alt=path), lines)
                        for path, lines in items))]  # fmt: skip


def _deployment_section(deployments: pl.DataFrame, rollouts: pl.DataFrame) -> ReportSection:
    def when(row) -> str:
        return f"{row['created_at']:%Y-%m-%d %H:%M}"

    blocks: list = [Heading("Deployment history")]
    if deployments.height:
        rows = [
            [when(r), r["action"], r["name"], r["model_hash"][:12], r["reason"]]
            for r in deployments.sort("id", descending=True).head(20).iter_rows(named=True)
        ]
        blocks.append(Table.of(["when", "action", "model", "hash", "reason"], rows))
    else:
        blocks.append(Paragraph("No model has been deployed yet."))
    if rollouts.height:
        rows = [
            [when(r), r["state"], r["name"], r["model_hash"][:12], r["reason"]]
            for r in rollouts.iter_rows(named=True)
        ]
        blocks += [Heading("Staged rollouts"),
                   Table.of(["when", "state", "model", "hash", "reason"], rows)]  # fmt: skip
    return ReportSection("deployment", "Deployment and rollout history", tuple(blocks))


def write_status_report(
    *,
    reports_dir: Path,
    run_id: str | None,
    data: DataFacts,
    evaluations: list[CandidateEvaluation],
    challenger: Challenger,
    action: str,
    test_wear: SealedSetWear,
    history,
    deployments: pl.DataFrame,
    rollouts: pl.DataFrame,
    gallery: ReportSection | None = None,
    problems: ReportSection | None = None,
    monitoring: ReportSection | None = None,
    fairness: ReportSection | None = None,
    features: ReportSection | None = None,
    slices: ReportSection | None = None,
    staleness: ReportSection | None = None,
    texts: ReportSection | None = None,
    gate_descriptions: dict[str, str] | None = None,
    training_notes: dict[str, str] | None = None,
) -> StatusReport:
    """Write ``status-<run_id>.html`` under ``reports_dir``; return its path and the
    Markdown summary (the client part, then the technical sections)."""
    technical = _technical_section(
        challenger,
        _leaderboard(evaluations, training_notes or {}, challenger.evaluation),
        _gate_table(challenger, gate_descriptions or {}),
        metric_history_png(history, metric="accuracy", split="validation"),
    )
    findings = [s for s in (problems, slices, fairness, features, staleness, monitoring) if s]
    data_part = _data_section(data, test_wear)
    client = client_part(
        challenger, action, kind=data.kind, sections=[data_part, *findings],
        worn_test_set=test_wear.worn,
    )  # fmt: skip
    sections = [
        technical,
        data_part,
        *findings,
        _deployment_section(deployments, rollouts),
        *([texts] if texts else []),
        *([gallery] if gallery else []),
    ]
    values = {
        "client": client,
        "sections": sections,
        "run_id": str(run_id),
        "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    path = reports_dir / f"status-{run_id or 'adhoc'}.html"
    write_atomically(path, render("status.html.j2", **values).encode("utf-8"))
    return StatusReport(path=path, markdown=render("status.md.j2", **values))
