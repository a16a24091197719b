"""Which models the server answers with: the champion, and a challenger in rollout.

A :class:`Lineup` is immutable. The server swaps the whole lineup in one assignment
when the store changes (promotion, rollback, a new challenger, a new or revoked key), so
a request in flight finishes with the models it started with and none is dropped.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from mllife.config.project import ProjectConfig
from mllife.models import Model
from mllife.models.environment import describe_changes, environment_changes
from mllife.models.registry import ModelRef, load_model
from mllife.models.training import place_model
from mllife.promotion.rollout import staged_challenger
from mllife.serve.keys import ApiKey, key_index, list_keys
from mllife.storage.store import Store

__all__ = [
    "Lineup",
    "ServedModel",
    "canary_bucket",
    "load_lineup",
    "rollout_challenger",
    "store_fingerprint",
]


@dataclass(frozen=True)
class ServedModel:
    ref: ModelRef
    model: Model
    data_version: str
    deployed_at: datetime | None
    metrics: dict[str, dict[str, float]]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.ref.name,
            "kind": self.ref.kind,
            "model_hash": self.ref.model_hash,
            "data_version": self.data_version,
            "deployed_at": None if self.deployed_at is None else self.deployed_at.isoformat(),
            "classes": self.model.classes,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class Lineup:
    champion: ServedModel | None
    challenger: ServedModel | None
    mode: str  # off, shadow or canary
    share: float
    keys: list[ApiKey] = field(default_factory=list)

    @functools.cached_property
    def keys_by_hash(self) -> dict[str, ApiKey]:
        """The active keys by hash (built once per lineup; a reload makes a new one)."""
        return key_index(self.keys)

    def answering(
        self, key: ApiKey, request_id: str | None = None
    ) -> tuple[ServedModel, str] | None:
        """The model that answers this request, and its role (champion or canary).

        Canary traffic is split per request: a stable hash of the request id (salted
        with the challenger's hash) below ``share`` goes to the challenger, so every
        key's traffic is split at the configured share, however few keys there are.
        Without a request id (before one is issued) the champion is named."""
        if self.champion is None:
            return None
        challenger = self.challenger
        if (
            self.mode == "canary"
            and challenger is not None
            and request_id is not None
            and key.may_use(challenger.ref.name)
            and canary_bucket(request_id, challenger.ref.model_hash) < self.share
        ):
            return challenger, "canary"
        return self.champion, "champion"

    def classes(self) -> set[str]:
        """Every class a served model (champion or challenger) may answer."""
        served = [m for m in (self.champion, self.challenger) if m is not None]
        return {c for m in served for c in m.model.classes}

    @property
    def shadow(self) -> ServedModel | None:
        return self.challenger if self.mode == "shadow" else None


def canary_bucket(request_id: str, salt: str) -> float:
    """A request's fixed place in [0, 1) (the same id always lands in the same place)."""
    digest = hashlib.blake2b(f"{salt}:{request_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def store_fingerprint(store: Store) -> tuple:
    """Changes whenever the store file (or its write-ahead log) is written."""
    parts = []
    for path in (store.path, store.path.with_name(store.path.name + ".wal")):
        try:
            stat = path.stat()
            parts.append((stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            parts.append(None)
    return tuple(parts)


def rollout_challenger(config: ProjectConfig, store: Store, champion_hash: str) -> str | None:
    """The model hash that shadows or canaries the champion: the staged challenger (one
    that passed every gate, or was staged by hand), never a refused one."""
    if config.serving.rollout.mode == "off":
        return None
    staged = staged_challenger(store)
    if staged is None or staged.model_hash == champion_hash:
        return None
    return staged.model_hash


def _served(
    config: ProjectConfig, store: Store, model_hash: str, deployed_at, previous: list
) -> ServedModel:
    for old in previous:
        if old is not None and old.ref.model_hash == model_hash:
            return old  # already loaded and verified
    row = store.model_row(model_hash)
    if row is None:
        from mllife._errors import ArtifactError

        raise ArtifactError(f"model {model_hash[:12]} is not recorded in the store")
    ref = ModelRef.from_row(row)
    if changes := environment_changes(row["spec"]):
        print(
            f"mllife serve: warning: {ref.name} {model_hash[:12]} was trained with other"
            f" library versions ({describe_changes(changes)}); `mllife status` says more",
            file=sys.stderr,
        )
    model = load_model(ref, artifacts_dir=config.artifacts_dir, store=store)
    place_model(model, config)  # [training] device, and the embedding cache
    if getattr(model, "kind", None) == "text_encoder":
        # served texts are new content: encoded each time, never written to the vector
        # cache (it would grow with every request, and a disk write per text costs more)
        model.cache = None
    metrics: dict[str, dict[str, float]] = {}
    for r in store.evaluations(model_hash=model_hash).iter_rows(named=True):
        metrics.setdefault(r["split"], {})[r["metric"]] = r["value"]
    return ServedModel(ref, model, row["data_version"], deployed_at, metrics)


def load_lineup(config: ProjectConfig, store: Store, previous: Lineup | None = None) -> Lineup:
    """Read the champion, rollout challenger and keys from the store; load new models."""
    reuse = [] if previous is None else [previous.champion, previous.challenger]
    keys = list_keys(store)
    current = store.champion()
    rollout = config.serving.rollout
    if current is None:
        return Lineup(None, None, rollout.mode, rollout.share, keys)
    champion = _served(config, store, current.model_hash, current.created_at, reuse)
    challenger_hash = rollout_challenger(config, store, current.model_hash)
    challenger = (
        None if challenger_hash is None else _served(config, store, challenger_hash, None, reuse)
    )
    return Lineup(champion, challenger, rollout.mode, rollout.share, keys)
