"""What image drift is measured on: per-image statistics of the pixels a model sees
(brightness, contrast, each colour channel's mean) and the original size."""

from __future__ import annotations

import numpy as np
import polars as pl

__all__ = ["embedding_columns", "image_statistics", "model_embeddings", "pixel_statistics"]


def pixel_statistics(pixels, sizes: list[tuple[int, int]] | None = None) -> list[dict]:
    """Per image, from the uint8 pixels (N, C, H, W) a model sees: brightness and contrast
    (mean and std of luminance), for colour the mean of each channel (red, green, blue),
    and the original width and height when ``sizes`` gives them. What image drift is
    measured on, for training data and served inputs alike."""
    values = np.asarray(pixels, dtype=np.float64)
    if values.shape[1] == 3:
        luminance = 0.299 * values[:, 0] + 0.587 * values[:, 1] + 0.114 * values[:, 2]
    else:
        luminance = values[:, 0]
    flat = luminance.reshape(len(values), -1)
    rows = []
    for i in range(len(values)):
        row = {"brightness": float(flat[i].mean()), "contrast": float(flat[i].std())}
        if values.shape[1] == 3:
            means = values[i].reshape(3, -1).mean(axis=1)
            row.update(red=float(means[0]), green=float(means[1]), blue=float(means[2]))
        if sizes is not None:
            row.update(width=int(sizes[i][0]), height=int(sizes[i][1]))
        rows.append(row)
    return rows


def image_statistics(images: list, *, preprocessor=None) -> pl.DataFrame:
    """:func:`pixel_statistics` of encoded images (bytes or paths), decoded by
    ``preprocessor`` (default: 64 px, colour when the image has colour), plus their
    original width and height."""
    # imported here: drift on tables (and `mllife.drift` from scripts) needs no torch
    from mllife.data.decode import channels_of_mode, open_image
    from mllife.preprocess.images import ImagePreprocessor

    rows = []
    for position, item in enumerate(images):
        image = open_image(item, what=f"image {position}")
        pre = preprocessor or ImagePreprocessor(
            size=64, channels=channels_of_mode(image.mode), resize="squash"
        )
        pixels = pre.pixels([image])
        rows += pixel_statistics(pixels.numpy(), [image.size])
    return pl.DataFrame(rows)


def model_embeddings(model, inputs) -> np.ndarray | None:
    """The vectors ``model`` sees its images as: an embedding candidate's embeddings, a
    torch network's input to its classification head; None for a model without one
    (a scikit-learn estimator on pixels)."""
    if hasattr(model, "embed"):
        return np.asarray(model.embed(inputs), dtype=np.float64)
    network = getattr(model, "network", None)
    if network is None:
        return None
    import torch  # here: this module is loaded with the graph, which never needs torch

    from mllife.models.networks import classifier_head

    _, _, head = classifier_head(network)
    captured: list = []
    hook = head.register_forward_hook(lambda _m, args, _out: captured.append(args[0].detach()))
    try:
        model.predict_proba_features(inputs)
    finally:
        hook.remove()
    return torch.cat(captured).float().cpu().numpy().astype(np.float64)


def embedding_columns(
    reference: np.ndarray, current: np.ndarray, *, components: int = 5
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Both sides projected on the reference embeddings' top principal components
    (``embedding_pc1``...): drift of what the images show, as the model sees it, tested
    column by column like any other statistic."""
    mean = reference.mean(axis=0)
    _, _, axes = np.linalg.svd(reference - mean, full_matrices=False)
    axes = axes[: min(components, axes.shape[0])]
    names = [f"embedding_pc{i + 1}" for i in range(len(axes))]

    def project(vectors: np.ndarray) -> pl.DataFrame:
        values = (vectors - mean) @ axes.T
        return pl.DataFrame({n: values[:, i] for i, n in enumerate(names)})

    return project(reference), project(current)
