"""Why the model said what it said about one input.

- **A table row**: SHAP values per column (the ``shap`` package's permutation explainer,
  model-agnostic, over the raw columns a client sends, with training rows as the
  background): how much each column's value moved the predicted class's probability
  away from its average over the background. Text columns are coded as numbers for the
  explainer and decoded before the model sees them.
- **An image**: a saliency map of the predicted class over the pixels the model saw:
  integrated gradients (``captum``) for a torch network, occlusion (``captum``: a grey
  patch slid over the image) for other models, drawn over the image as a PNG.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from mllife._errors import DataError

__all__ = [
    "GALLERY_SALIENCY",
    "ImageExplanation",
    "RowExplanation",
    "explain_image",
    "explain_row",
    "gallery_rows",
    "keep_gallery_saliency",
    "read_input",
    "saliency_cache",
    "saliency_path",
]

BACKGROUND_ROWS = 100  # training rows SHAP averages over


@dataclass(frozen=True)
class RowExplanation:
    predicted: str
    confidence: float
    #: the predicted class's average probability over the background rows
    base: float
    #: (column, its value, SHAP value), largest effect first
    attributions: list[tuple[str, object, float]] = field(default_factory=list)

    def lines(self) -> list[str]:
        width = max((len(c) for c, _, _ in self.attributions), default=0)
        out = [
            f"prediction: {self.predicted} ({self.confidence:.3f});"
            f" average over training rows {self.base:.3f}",
            "SHAP values (each column's push on that probability, largest first):",
        ]
        for column, value, effect in self.attributions:
            out.append(f"  {column:<{width}}  {effect:+.4f}   (= {value!r})")
        return out


def _raw_columns(model) -> list[str]:
    derived = set(getattr(model.preprocessor.derived, "columns", ()) or ())
    return [c for c in model.preprocessor.columns if c not in derived]


def explain_row(model, row: dict, background: pl.DataFrame, *, seed: int = 0) -> RowExplanation:
    """SHAP values of ``row``'s columns for the class ``model`` predicts."""
    import shap

    columns = _raw_columns(model)
    missing = [c for c in columns if c not in row]
    if missing:
        raise DataError(f"the row lacks column(s) {missing}; it needs all of {columns}")
    extra = sorted(set(row) - set(columns))
    if extra:
        raise DataError(f"the row has column(s) the model does not read: {extra}")
    proba = model.predict_proba(pl.DataFrame([row]).select(columns))[0]  # checks the row
    target = int(proba.argmax())
    sample = background.select(columns).sample(min(BACKGROUND_ROWS, background.height), seed=seed)
    # the explainer's masker compares numbers: text becomes a code into its values
    vocabularies: dict[str, list] = {}
    encoded_background, encoded_row = [], []
    for name in columns:
        column = sample[name]
        if column.dtype.is_numeric():
            encoded_background.append(column.cast(pl.Float64).to_numpy())
            value = row[name]
            encoded_row.append(np.nan if value is None else float(value))
        else:
            values = sorted({*column.cast(pl.String).drop_nulls().to_list(), str(row[name])})
            vocabularies[name] = values
            codes = {v: i for i, v in enumerate(values)}
            encoded_background.append(
                np.array([codes.get(v, np.nan) for v in column.cast(pl.String).to_list()])
            )
            encoded_row.append(codes[str(row[name])])
    matrix = np.column_stack(encoded_background).astype(np.float64)
    x = np.asarray([encoded_row], dtype=np.float64)

    def predicted_probability(batch: np.ndarray) -> np.ndarray:
        data = {}
        for j, name in enumerate(columns):
            if name in vocabularies:
                names = vocabularies[name]
                data[name] = [None if np.isnan(v) else names[int(v)] for v in batch[:, j]]
            else:
                data[name] = batch[:, j]
        return model.predict_proba(pl.DataFrame(data))[:, target]

    explainer = shap.explainers.Permutation(
        predicted_probability, shap.maskers.Independent(matrix), seed=seed
    )
    values = explainer(x, max_evals=max(2 * len(columns) + 1, 500))
    effects = values.values[0]
    order = np.argsort(-np.abs(effects))
    return RowExplanation(
        str(model.classes[target]),
        float(proba[target]),
        float(values.base_values[0]),
        [(columns[i], row[columns[i]], float(effects[i])) for i in order],
    )


@dataclass(frozen=True)
class ImageExplanation:
    predicted: str
    confidence: float
    method: str
    #: the saliency map over the image, normalised to 0-1 (S x S)
    saliency: np.ndarray
    png: bytes


def _saliency(model, pixels, target: int, *, quick: bool = False) -> tuple[np.ndarray, str]:
    """The map and its method; ``quick`` (the report's gallery, every new model): fewer
    integration steps and a coarser occlusion grid."""
    import torch
    from captum.attr import IntegratedGradients, Occlusion

    network = getattr(model, "network", None)
    if isinstance(network, torch.nn.Module):
        network.eval()
        forward = lambda x: torch.softmax(network(x), dim=1)  # noqa: E731
        attribution = IntegratedGradients(forward).attribute(
            pixels, baselines=torch.zeros_like(pixels), target=target, n_steps=8 if quick else 32
        )
        method = "integrated gradients"
    else:
        forward = lambda x: torch.from_numpy(model.predict_proba_features(x))  # noqa: E731
        side = pixels.shape[-1]
        window = max(1, side // (4 if quick else 8))
        stride = window if quick else max(1, window // 2)
        attribution = Occlusion(forward).attribute(
            pixels, target=target, sliding_window_shapes=(pixels.shape[1], window, window),
            strides=(pixels.shape[1], stride, stride), perturbations_per_eval=64,
        )  # fmt: skip
        method = "occlusion"
    heat = attribution.detach().abs().sum(dim=1)[0].double().numpy()
    top = heat.max()
    return (heat / top if top > 0 else heat), method


def _overlay(image, heat: np.ndarray, size: int):
    """``image`` at ``size`` px with the saliency drawn in red over it."""
    from PIL import Image

    shown = image.resize((size, size), Image.Resampling.BILINEAR)
    spread = Image.fromarray((heat * 255).astype(np.uint8)).resize(
        (size, size), Image.Resampling.NEAREST
    )
    weight = np.asarray(spread, dtype=np.float64)[..., None] / 255.0 * 0.6
    red = np.zeros((size, size, 3))
    red[..., 0] = 255.0
    blended = np.asarray(shown, dtype=np.float64) * (1 - weight) + red * weight
    return shown, Image.fromarray(blended.clip(0, 255).astype(np.uint8))


def _png(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def explain_image(model, payload: bytes, *, what: str, size: int = 256) -> ImageExplanation:
    """A saliency map of the class ``model`` predicts for the image ``payload``; its PNG
    shows the image and the map over it side by side (``size`` px each)."""
    from PIL import Image

    from mllife.data.decode import open_image

    image = open_image(payload, what=what).convert("RGB")  # an error naming the file
    pixels = model.preprocessor.transform([payload])
    proba = model.predict_proba_features(pixels)[0]
    target = int(proba.argmax())
    heat, method = _saliency(model, pixels.float().clone().requires_grad_(True), target)
    shown, blended = _overlay(image, heat, max(size, heat.shape[0]))
    side_by_side = Image.new("RGB", (2 * shown.width, shown.height))
    side_by_side.paste(shown, (0, 0))
    side_by_side.paste(blended, (shown.width, 0))
    return ImageExplanation(
        str(model.classes[target]), float(proba[target]), method, heat, _png(side_by_side)
    )


#: misclassified validation images the report's gallery shows a saliency map for (a
#: third of it past 64-pixel images: each new model pays for them)
GALLERY_SALIENCY = 12
MAX_ERRORS = 36  # misclassified examples the gallery shows
MAX_UNSURE = 12  # least confident correct ones


def gallery_rows(
    rows: pl.DataFrame, predicted: tuple[str, ...], confidence: tuple[float, ...]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """What a person should look at: (errors, most confident first) and (correct, least
    confident first), at most ``MAX_ERRORS`` and ``MAX_UNSURE``."""
    frame = rows.with_columns(
        pl.Series("predicted", list(predicted), dtype=pl.String),
        pl.Series("confidence", list(confidence), dtype=pl.Float64),
    )
    errors = frame.filter(pl.col("label") != pl.col("predicted")).sort(
        "confidence", descending=True
    )
    unsure = frame.filter(pl.col("label") == pl.col("predicted")).sort("confidence")
    return errors.head(MAX_ERRORS), unsure.head(MAX_UNSURE)


def saliency_cache(config) -> Path:
    """Where a project keeps its gallery saliency maps: ``<folder>/<model hash>/``."""
    return config.state_dir / "cache" / "saliency"


def saliency_path(cache: Path, model_hash: str, sha256: str) -> Path:
    return cache / model_hash / f"{sha256}.png"


def keep_gallery_saliency(model, model_hash: str, rows, predicted, confidence, *, root, cache):
    """Saliency maps of the first misclassified validation images the gallery shows,
    kept as PNGs per (model, image) for the report; made once each."""
    from PIL import Image

    from mllife.data.decode import open_image
    from mllife.storage.files import write_atomically

    errors, _ = gallery_rows(rows, predicted, confidence)
    small = model.preprocessor.size <= 64  # digits-like: every error's map is cheap
    shown = errors.head(GALLERY_SALIENCY if small else GALLERY_SALIENCY // 3)
    classes = [str(c) for c in model.classes]
    for path, sha256, label in shown.select("path", "sha256", "predicted").iter_rows():
        target = saliency_path(cache, model_hash, sha256)
        if target.is_file():
            continue
        payload = (Path(root) / path).read_bytes()
        pixels = model.preprocessor.transform([payload])
        best = classes.index(label)  # what evaluation predicted: no second prediction
        heat, _ = _saliency(model, pixels.float().clone().requires_grad_(True), best, quick=True)
        image = open_image(payload, what=path).convert("RGB")
        _, blended = _overlay(image, heat, max(56, heat.shape[0]))
        blended.thumbnail((96, 96), Image.Resampling.LANCZOS)
        write_atomically(target, _png(blended))


def read_input(text: str) -> tuple[str, object]:
    """``mllife explain``'s argument: ("row", dict) for a JSON object (inline, or a
    .json file), ("image", bytes) for any other file."""
    import json

    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            row = json.loads(stripped)
        except ValueError as exc:
            raise DataError(f"not a JSON object: {exc}") from None
        return "row", row
    path = Path(text)
    if not path.is_file():
        raise DataError(f'{text}: no such file, and not a JSON row ({{"column": value, ...}})')
    if path.suffix.lower() == ".json":
        return read_input(path.read_text())
    return "image", path.read_bytes()
