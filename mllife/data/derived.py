"""Derived features (``[features] derive``): a function of the project's own that maps a
table's raw feature columns to extra columns.

Its module's source text travels inside every model trained on it (the preprocessor's
state), so serving computes exactly what training computed, even after the file has
changed or gone. The function gets the raw feature columns only (never the target or
the id: a derived feature cannot see the label) as a polars DataFrame, and returns the
new columns as a DataFrame of the same height. The new columns join the table before
the contract is inferred or checked, so contract, cleaning, splits and drift see them.

The module must stand alone (imports of installed libraries are fine; another module of
the project would not travel with it).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl

from mllife._errors import ConfigError, DataError

__all__ = ["DerivedFeatures", "derived_features", "table_with_derived"]

#: compiled functions by fingerprint: compiled once per process, not per request (and
#: kept out of the dataclass, which is pickled with the model)
_COMPILED: dict[str, Any] = {}


@dataclass(frozen=True)
class DerivedFeatures:
    #: "module:function" as configured
    target: str
    #: the module's source text, as it was when the model was trained
    source: str
    #: the columns it returns, in order (known once it has run on the training data)
    columns: tuple[str, ...] = ()

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"{self.target}\n{self.source}".encode()).hexdigest()[:16]

    def _function(self):
        function = _COMPILED.get(self.fingerprint)
        if function is None:
            function = _COMPILED[self.fingerprint] = self._compile()
        return function

    def _compile(self):
        module, name = self.target.split(":")
        namespace: dict[str, Any] = {"__name__": f"mllife_derived_{module}"}
        exec(compile(self.source, f"<[features] derive {self.target}>", "exec"), namespace)  # noqa: S102
        function = namespace.get(name)
        if not callable(function):
            raise ConfigError(f"[features] derive {self.target!r}: {module} has no function {name}")
        return function

    def compute(self, inputs: pl.DataFrame) -> pl.DataFrame:
        """The derived columns for ``inputs`` (the raw feature columns), checked: a
        DataFrame of the same height, no name clashing with an input, and, for a trained
        model, the columns it was trained with."""
        try:
            out = self._function()(inputs.clone())
        except (ConfigError, DataError):
            raise
        except Exception as exc:
            raise DataError(
                f"[features] derive {self.target} raised {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(out, pl.DataFrame):
            raise DataError(
                f"[features] derive {self.target} returned {type(out).__name__}; it must"
                " return a polars DataFrame of the new columns"
            )
        if out.height != inputs.height:
            raise DataError(
                f"[features] derive {self.target} returned {out.height} rows for"
                f" {inputs.height}: it must return one row per input row, in order"
            )
        if clash := [c for c in out.columns if c in inputs.columns]:
            raise DataError(
                f"[features] derive {self.target} returned columns the table already has:"
                f" {clash}; return only new columns, under new names"
            )
        if self.columns and tuple(out.columns) != self.columns:
            raise DataError(
                f"[features] derive {self.target} returned {out.columns}; the model was"
                f" trained with {list(self.columns)}"
            )
        return out

    def completed(self, rows: pl.DataFrame) -> pl.DataFrame:
        """``rows`` with the derived columns added (rows that have them stay as they are)."""
        if self.columns and all(c in rows.columns for c in self.columns):
            return rows
        inputs = rows.select([c for c in rows.columns if c not in self.columns])
        return inputs.hstack(self.compute(inputs))

    def trained(self, columns) -> DerivedFeatures:
        return replace(self, columns=tuple(columns))

    def state(self) -> dict[str, Any]:
        return {"target": self.target, "source": self.source, "columns": list(self.columns)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DerivedFeatures:
        return cls(state["target"], state["source"], tuple(state["columns"]))


def derived_features(config) -> DerivedFeatures | None:
    """The project's ``[features] derive`` function with its module's source, or None."""
    target = config.features.derive
    if target is None:
        return None
    module = target.split(":")[0]
    sys.path.insert(0, str(config.root))
    importlib.invalidate_caches()  # a module file added or removed since the last look
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as exc:
        raise ConfigError(f"[features] derive {target!r}: cannot find {module}: {exc}") from exc
    finally:
        sys.path.remove(str(config.root))
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ConfigError(
            f"[features] derive {target!r}: no Python module {module!r} in the project"
            f" folder {config.root} or the installed packages"
        )
    return DerivedFeatures(target, Path(spec.origin).read_text(encoding="utf-8"))


def table_with_derived(config, table: pl.DataFrame, derived: DerivedFeatures):
    """``table`` with the derived columns added, and its contract with them marked
    ``derived`` (inferred contracts are marked here; a declared or frozen contract must
    say so itself, or serving would ask clients for them)."""
    from mllife.data.contract_file import load_contract, with_missing_values
    from mllife.data.tables import feature_columns

    before = load_contract(table, config.data, config.schema_path)
    sent = {n: spec for n, spec in before.columns.items() if not spec.derived}
    if before.frozen and any(n not in table.columns for n in sent):
        # a column the function may need is gone: the contract check names it, not a
        # KeyError from inside the function
        return table, replace(before, columns=sent)
    raw = with_missing_values(table, before.columns)  # the function sees real nulls
    names = [c for c in feature_columns(raw, config.data) if c not in config.data.forbidden]
    made = derived.compute(raw.select(names))
    table = table.hstack(made)
    contract = load_contract(table, config.data, config.schema_path)
    columns = dict(contract.columns)
    for name in made.columns:
        spec = columns.get(name)
        if spec is None or spec.derived:
            continue  # an undeclared column: the contract check names it
        if contract.frozen:
            raise DataError(
                f"column {name!r} is made by [features] derive {derived.target}, but the"
                f" contract ({contract.origin}) does not mark it: add derived = true to it"
                f" (or delete {config.schema_path.name} to infer the contract again)"
            )
        columns[name] = spec.model_copy(update={"derived": True})
    if stale := [n for n, spec in columns.items() if spec.derived and n not in made.columns]:
        raise DataError(
            f"the contract ({contract.origin}) marks {stale} as derived, but [features]"
            f" derive {derived.target} does not make them: remove them from the contract"
        )
    return table, replace(contract, columns=columns)
