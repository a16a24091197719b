"""Known problems shipped with the default digits project, built from real digits.

- ``inverted_colours``: the "photo filter" case — white-on-black digits.
- ``rotated_strokes``: digits written at a slant (rotated 20-30 degrees).
- ``one_vs_seven``: ones and sevens, the classic look-alikes, nudged one pixel.

Each has positive patterns (showing the problem) and negative ones (plain digits as
controls), written as PNG files plus a ``problem.toml`` per problem. The files are
committed under ``problems/``; this module regenerates them byte for byte.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from mllife.data.defaults import encode_gray_png

__all__ = ["write_digit_problems"]

# Digits from the end of the data set, one per class where possible.
_SOURCE = range(1650, 1797)


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = ((digits.images.astype(np.int64) * 255 + 8) // 16).astype(np.uint8)
    return images, digits.target


def _shift(image: np.ndarray, dx: int) -> np.ndarray:
    return np.roll(image, dx, axis=1)


def _rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    return np.asarray(Image.fromarray(image).rotate(degrees, resample=Image.BILINEAR))


def _first_of_each(target, classes, count):
    picked = []
    for wanted in classes:
        for i in _SOURCE:
            if target[i] == wanted and i not in picked:
                picked.append(i)
                if sum(target[j] == wanted for j in picked) >= count:
                    break
    return picked


def write_digit_problems(folder: Path) -> list[str]:
    images, target = _digits()
    folder = Path(folder)
    specs = {
        "inverted_colours": (
            "Colour-inverted digits, as a photo filter produces: dark strokes on a light"
            " background. The training digits are all light strokes on a black background.",
            [(i, 255 - images[i], "positive") for i in _first_of_each(target, range(10), 1)]
            + [
                (i, _shift(images[i], 1), "negative")
                for i in _first_of_each(target, (0, 3, 6, 9), 2)[1::2]
            ],
        ),
        "rotated_strokes": (
            "Digits written at a slant (rotated 20-30 degrees).",
            [
                (i, _rotate(images[i], 20 + 10 * (k % 2) * (1 if k % 4 < 2 else -1)), "positive")
                for k, i in enumerate(_first_of_each(target, range(10), 1))
            ]
            + [(i, images[i], "negative") for i in _first_of_each(target, (2, 5, 8), 2)[1::2]],
        ),
        "one_vs_seven": (
            "Ones and sevens, the classic look-alikes, nudged one pixel sideways.",
            [
                (i, _shift(images[i], 1 if k % 2 else -1), "positive")
                for k, i in enumerate(_first_of_each(target, (1, 7), 6))
            ]
            + [(i, images[i], "negative") for i in _first_of_each(target, (4, 2), 1)],
        ),
    }
    written = []
    for name, (description, patterns) in specs.items():
        target_dir = folder / name
        target_dir.mkdir(parents=True, exist_ok=True)
        lines = [f'description = "{description}"', ""]
        for index, (source, pixels, kind) in enumerate(patterns):
            label = int(target[source])
            file = f"{kind}_{index:02d}_digit{label}_from{source}.png"
            (target_dir / file).write_bytes(encode_gray_png(np.ascontiguousarray(pixels)))
            lines += [
                "[[patterns]]",
                f'file = "{file}"',
                f'expected = "{label}"',
                f'kind = "{kind}"',
                'source = "contrived"',
                "",
            ]
        (target_dir / "problem.toml").write_text("\n".join(lines))
        written.append(name)
    return written
