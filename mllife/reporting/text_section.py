"""The report's part for a text project: accuracy by text length, and the misclassified
validation texts by confusion pair with the words that drove each prediction marked.

A word's weight is measured by occlusion, for any model alike (n-grams, a sentence
encoder, both): how much the predicted class's probability falls when the word is left
out of the text. Texts are shown as text (the templates escape them); markup in a review
is never rendered.
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import polars as pl

from mllife.data.text_normal import normalized_text
from mllife.metrics import wilson_interval
from mllife.reporting.blocks import Heading, MarkedText, Paragraph, ReportSection, Table

__all__ = [
    "LENGTH_BANDS",
    "length_bands",
    "text_section",
    "validation_text_section",
    "word_weights",
]

#: characters, once normalised
LENGTH_BANDS = ((0, 50), (50, 100), (100, 200), (200, 500), (500, None))
SHOWN_ERRORS = 12
_WORD = re.compile(r"\S+")


def length_bands(texts: list[str], correct: np.ndarray) -> list[list]:
    """[band, texts, accuracy, 95% interval] per length band that holds texts."""
    lengths = np.array([len(normalized_text(t)) for t in texts])
    rows = []
    for low, high in LENGTH_BANDS:
        inside = (lengths >= low) & (lengths < (high if high is not None else np.inf))
        n = int(inside.sum())
        if n:
            hits = int(correct[inside].sum())
            lo, hi = wilson_interval(hits, n, 0.95)
            band = f"{low}-{high} characters" if high else f"{low}+ characters"
            rows.append([band, n, f"{hits / n:.3f}", f"[{lo:.3f}, {hi:.3f}]"])
    return rows


def word_weights(model, column: str, text: str, label: str) -> list[tuple[str, float]]:
    """Each word of ``text`` (normalised) with the fall in ``label``'s probability when
    it is left out (negative: the word spoke against ``label``)."""
    words = [m.group() for m in _WORD.finditer(normalized_text(text))]
    if not words:
        return []
    variants = [" ".join(words)] + [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]
    proba = model.predict_proba(pl.DataFrame({column: variants}))
    k = [str(c) for c in model.classes].index(label)
    return [(w, float(proba[0, k] - proba[i + 1, k])) for i, w in enumerate(words)]


def text_section(rows: pl.DataFrame, predicted, confidence, *, column: str, model) -> ReportSection:
    """``rows``: the validation rows; ``predicted``/``confidence``: the model's answers."""
    predicted = np.asarray([str(p) for p in predicted], dtype=object)
    labels = np.asarray(rows["label"].cast(pl.String).to_list(), dtype=object)
    texts = rows[column].cast(pl.String).to_list()
    correct = predicted == labels
    blocks: list = [
        Heading("Accuracy by text length"),
        Table.of(["length", "texts", "accuracy", "95% interval"], length_bands(texts, correct)),
    ]
    wrong = np.flatnonzero(~correct)
    wrong = wrong[np.argsort(-np.asarray(confidence)[wrong], kind="stable")][:SHOWN_ERRORS]
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i in wrong:
        groups[(labels[i], predicted[i])].append(int(i))
    if not groups:
        blocks.append(Paragraph("No validation text is misclassified."))
    for (true, pred), items in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        blocks.append(Heading(f"{true} predicted as {pred} (most confident first)"))
        for i in items:
            caption = (
                f"row {rows['row'][i]}: true {true}, predicted {pred}"
                f" ({float(confidence[i]):.0%}); marked: the words that raised {pred}"
            )
            blocks.append(MarkedText(tuple(word_weights(model, column, texts[i], pred)), caption))
    return ReportSection(
        "texts",
        "Texts: accuracy by length, and the words behind the errors",
        tuple(blocks),
        client_lines=[],
    )


def validation_text_section(config, store, splits, evaluation) -> ReportSection | None:
    """:func:`text_section` of ``evaluation``'s model on the validation split; None when
    the project has no text column."""
    from mllife.models.registry import load_model
    from mllife.models.training import place_model
    from mllife.preprocess.inputs import split_rows

    texts = [n for n, spec in splits.columns.items() if spec.dtype == "text"]
    if not texts:
        return None
    model = load_model(evaluation.ref, artifacts_dir=config.artifacts_dir, store=store)
    place_model(model, config)
    return text_section(
        split_rows(splits.rows, "validation"),
        evaluation.validation_predictions,
        evaluation.validation_confidence,
        column=texts[0],
        model=model,
    )
