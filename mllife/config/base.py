"""The base of every ``mllife.toml`` section: a strict pydantic model (an unknown key or
a wrong type is an error naming it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["_Section"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
