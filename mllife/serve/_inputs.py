"""Served inputs checked against the training contract before any model sees them.

Table rows are checked by :class:`RowContract`, compiled from the same column contract
(``mllife.toml`` or the frozen ``mllife.schema.json``) that pandera enforces on training
data: same dtypes, ranges, categories and nullability, checked per row in plain Python
because a pandera validation costs milliseconds and a request has a budget of one.
``tests/reliability`` fuzzes both and checks they accept and reject the same rows.

Images are decoded once, with a pixel budget against decompression bombs.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from mllife._errors import DataError
from mllife.config import ColumnConfig

__all__ = ["DecodedImage", "InputError", "RowContract", "decode_image", "feature_contract"]

MAX_REPORTED = 20
_NONE = type(None)
_FLOAT_TYPES = frozenset({float, int})
#: the JSON types each contract dtype accepts (bool is not a number here)
_TYPES = {
    "float": {float, int},
    "int": {int},
    "bool": {bool},
    "string": {str},
    "category": {str},
    "text": {str},
}
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM"})


class InputError(DataError):
    """A request's input breaks the contract; ``problems`` lists each offence."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


def feature_contract(config) -> dict[str, ColumnConfig]:
    """The column contract the champion was trained under (declared, else frozen)."""
    from mllife.tables import load_or_freeze_columns

    if config.data.columns or config.schema_path.is_file():
        columns, _ = load_or_freeze_columns(None, config.data, config.schema_path)
        return columns
    raise DataError(
        f"no feature contract: {config.schema_path} does not exist and mllife.toml declares"
        " no [data.columns]; run `mllife run` once (it freezes the inferred contract)"
    )


def _kind_error(spec: ColumnConfig, value: Any) -> str | None:
    """Why ``value`` is not of the column's dtype, or None if it is."""
    if value is None:
        return None if spec.nullable else "is missing (null) but the column is not nullable"
    dtype = spec.dtype
    if dtype == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"must be a number, got {_show(value)}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"must be a finite number, got {value!r}"
    elif dtype == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            return f"must be an integer, got {_show(value)}"
    elif dtype == "bool":
        if not isinstance(value, bool):
            return f"must be true or false, got {_show(value)}"
    elif not isinstance(value, str):
        return f"must be text, got {_show(value)}"
    if spec.min is not None and dtype in ("float", "int") and value < spec.min:
        return f"is {value!r}, below the contract's minimum {spec.min:g}"
    if spec.max is not None and dtype in ("float", "int") and value > spec.max:
        return f"is {value!r}, above the contract's maximum {spec.max:g}"
    if spec.categories is not None and value not in spec.categories:
        allowed = list(spec.categories[:10])
        more = "" if len(spec.categories) <= 10 else f" and {len(spec.categories) - 10} more"
        return f"is {_show(value)}, not one of the categories {allowed}{more}"
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class RowContract:
    """Checks rows (dicts) against a column contract; raises :class:`InputError`."""

    def __init__(self, columns: dict[str, ColumnConfig]) -> None:
        self.columns = dict(columns)
        self._names = frozenset(columns)
        self._plan = [
            (
                name,
                frozenset(_TYPES[spec.dtype] | ({type(None)} if spec.nullable else set())),
                spec.min,
                spec.max,
                None if spec.categories is None else frozenset(spec.categories),
                spec.dtype == "float",
            )
            for name, spec in self.columns.items()
        ]
        # non-nullable float columns are checked together, as one matrix
        floats = [
            (name, spec)
            for name, spec in self.columns.items()
            if spec.dtype == "float" and not spec.nullable
        ]
        self._floats = [name for name, _ in floats]
        self._float_low = np.array([-np.inf if s.min is None else s.min for _, s in floats])
        self._float_high = np.array([np.inf if s.max is None else s.max for _, s in floats])
        together = set(self._floats)
        self._others = [step for step in self._plan if step[0] not in together]

    def check(self, rows: Any) -> list[dict[str, Any]]:
        if not isinstance(rows, list) or not rows:
            raise InputError("'rows' must be a non-empty list of objects (column -> value)")
        if self._all_valid(rows):
            return rows
        problems: list[str] = []
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(f"row {index}: must be an object, got {type(row).__name__}")
            else:
                problems.extend(self._row_problems(index, row))
            if len(problems) >= MAX_REPORTED:
                break
        if problems:
            raise InputError(
                f"{len(problems)}{'+' if len(problems) >= MAX_REPORTED else ''} input"
                " problem(s): " + "; ".join(problems[:3]),
                problems[:MAX_REPORTED],
            )
        return rows

    def _all_valid(self, rows: list) -> bool:
        """Column at a time, no messages: the common case of a valid batch, fast.

        Anything doubtful returns False and the row-by-row check names the offence.
        """
        names = self._names
        for row in rows:
            if type(row) is not dict or row.keys() != names:
                return False
        if self._floats:
            # every float column of every row in one array: one type scan, vector checks
            names = self._floats
            values = [row[name] for row in rows for name in names]
            if not _FLOAT_TYPES.issuperset(map(type, values)):
                return False
            matrix = np.array(values, dtype=np.float64).reshape(len(rows), len(names))
            if not (
                np.isfinite(matrix).all()
                and (matrix >= self._float_low).all()
                and (matrix <= self._float_high).all()
            ):
                return False
        for name, allowed, low, high, categories, finite in self._others:
            values = [row[name] for row in rows]
            types = set(map(type, values))
            if not types <= allowed:
                return False
            present = values if _NONE not in types else [v for v in values if v is not None]
            if not present:
                continue
            if finite and not math.isfinite(sum(present)):  # NaN, inf (or overflow)
                return False
            if low is not None and min(present) < low:
                return False
            if high is not None and max(present) > high:
                return False
            if categories is not None and not categories.issuperset(present):
                return False
        return True

    def _row_problems(self, index: int, row: dict[str, Any]) -> list[str]:
        problems = []
        if row.keys() != self._names:
            missing = sorted(self._names - row.keys())
            extra = sorted(str(k) for k in row.keys() - self._names)
            if missing:
                problems.append(f"row {index}: missing column(s) {missing[:10]}")
            if extra:
                problems.append(f"row {index}: unknown column(s) {extra[:10]}")
        for name, spec in self.columns.items():
            if name in row:
                error = _kind_error(spec, row[name])
                if error is not None:
                    problems.append(f"row {index}, column {name!r} {error}")
        return problems


@dataclass(frozen=True)
class DecodedImage:
    #: grayscale pixels, what the model's preprocessing receives
    pixels: np.ndarray
    brightness: float
    contrast: float
    width: int
    height: int


def decode_image(payload: bytes, *, position: int, max_pixels: int) -> DecodedImage:
    """Decode an uploaded image, refusing non-images and anything over ``max_pixels``.

    The size is read from the header before any pixel is decoded, so a decompression
    bomb is refused without inflating it.
    """
    from PIL import Image

    where = f"image {position}"
    if not payload:
        raise InputError(f"{where} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(payload)) as image:
                if image.format not in IMAGE_FORMATS:
                    raise InputError(
                        f"{where}: format {image.format} is not accepted;"
                        f" send one of {sorted(IMAGE_FORMATS)}"
                    )
                width, height = image.size
                if width < 1 or height < 1 or width * height > max_pixels:
                    raise InputError(
                        f"{where} is {width}x{height} pixels; the limit is {max_pixels}"
                        " pixels (serving.max_image_pixels)"
                    )
                pixels = np.asarray(image.convert("L"), dtype=np.uint8)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise InputError(f"{where} is refused as a decompression bomb: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{where} is not a readable image: {exc}") from None
    except Warning as exc:  # a DecompressionBombWarning raised as an error above
        raise InputError(f"{where} is refused: {exc}") from None
    values = pixels.astype(np.float64)
    return DecodedImage(pixels, float(values.mean()), float(values.std()), width, height)
