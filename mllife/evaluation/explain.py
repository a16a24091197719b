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
    "ImageExplanation",
    "RowExplanation",
    "explain_image",
    "explain_row",
    "read_input",
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


def _saliency(model, pixels, target: int) -> tuple[np.ndarray, str]:
    import torch
    from captum.attr import IntegratedGradients, Occlusion

    network = getattr(model, "network", None)
    if isinstance(network, torch.nn.Module):
        network.eval()
        forward = lambda x: torch.softmax(network(x), dim=1)  # noqa: E731
        attribution = IntegratedGradients(forward).attribute(
            pixels, baselines=torch.zeros_like(pixels), target=target, n_steps=32
        )
        method = "integrated gradients"
    else:
        forward = lambda x: torch.from_numpy(model.predict_proba_features(x))  # noqa: E731
        side = pixels.shape[-1]
        window = max(1, side // 8)
        attribution = Occlusion(forward).attribute(
            pixels, target=target, sliding_window_shapes=(pixels.shape[1], window, window),
            strides=(pixels.shape[1], max(1, window // 2), max(1, window // 2)),
        )  # fmt: skip
        method = "occlusion"
    heat = attribution.detach().abs().sum(dim=1)[0].double().numpy()
    top = heat.max()
    return (heat / top if top > 0 else heat), method


def explain_image(model, payload: bytes, *, what: str) -> ImageExplanation:
    """A saliency map of the class ``model`` predicts for the image ``payload``."""
    from PIL import Image

    from mllife.data.decode import open_image

    image = open_image(payload, what=what).convert("RGB")  # an error naming the file
    pixels = model.preprocessor.transform([payload])
    proba = model.predict_proba_features(pixels)[0]
    target = int(proba.argmax())
    heat, method = _saliency(model, pixels.float().clone().requires_grad_(True), target)
    size = max(256, heat.shape[0])
    shown = image.resize((size, size), Image.Resampling.BILINEAR)
    overlay = np.zeros((size, size, 3), dtype=np.float64)
    big = (
        np.asarray(
            Image.fromarray((heat * 255).astype(np.uint8)).resize(
                (size, size), Image.Resampling.NEAREST
            ),
            dtype=np.float64,
        )
        / 255.0
    )
    overlay[..., 0] = 255.0 * big  # red where the prediction leans on the pixels
    blended = np.asarray(shown, dtype=np.float64) * (1 - 0.6 * big[..., None]) + overlay * 0.6
    side_by_side = Image.new("RGB", (2 * size, size))
    side_by_side.paste(shown, (0, 0))
    side_by_side.paste(Image.fromarray(blended.clip(0, 255).astype(np.uint8)), (size, 0))
    buffer = io.BytesIO()
    side_by_side.save(buffer, format="PNG")
    return ImageExplanation(
        str(model.classes[target]), float(proba[target]), method, heat, buffer.getvalue()
    )


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
