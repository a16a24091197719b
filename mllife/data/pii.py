"""Personal data in table columns (``[data] pii``): the model may use such a column, but
its values never reach the prediction logs, the store or a report in clear.

Logged values are replaced by a keyed hash (HMAC-SHA256 under a secret kept in the
project's local state, ``.mllife/pii.key``, never in git; a plain hash of a birth date
or a postcode is reversed by trying every value) or left out (``pii_logging = "drop"``).
Equal values keep equal hashes, so counting and grouping still work; nothing can be read
back. Reports show a hashed label in place of the value.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import polars as pl

from mllife.storage.signing import project_key

__all__ = ["PiiMask", "pii_mask"]

_SHOWN = 12  # hex digits of a hash a log or report keeps


class PiiMask:
    """What ``columns`` become wherever served or reported data is written."""

    def __init__(self, columns: tuple[str, ...], mode: str, key: bytes) -> None:
        self.columns = frozenset(columns)
        self.mode = mode  # "hash" or "drop"
        self._key = key

    def hashed(self, value) -> str | None:
        """A value's keyed hash (None stays None): ``pii:`` and 12 hex digits."""
        if value is None:
            return None
        digest = hmac.new(self._key, str(value).encode(), hashlib.sha256).hexdigest()
        return "pii:" + digest[:_SHOWN]

    def shown(self, column: str, value) -> object:
        """What a report may show of ``column``'s ``value``."""
        return self.hashed(value) if column in self.columns else value

    def struct(self, features: pl.Series) -> pl.Series:
        """A logged features struct column with its pii fields hashed or left out."""
        fields = [f.name for f in features.dtype.fields]
        private = [name for name in fields if name in self.columns]
        if not private:
            return features
        frame = features.struct.unnest()
        if self.mode == "drop":
            frame = frame.drop(private)
        else:
            frame = frame.with_columns(
                pl.Series(name, [self.hashed(v) for v in frame[name].to_list()], pl.String)
                for name in private
            )
        return frame.select(pl.struct(frame.columns).alias(features.name)).to_series()


def pii_mask(config) -> PiiMask | None:
    """The project's mask, or None when it declares no pii column."""
    if not config.data.pii:
        return None
    key = project_key(Path(config.state_dir) / "pii.key")
    return PiiMask(tuple(config.data.pii), config.data.pii_logging, key)
