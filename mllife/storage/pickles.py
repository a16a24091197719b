"""Unpickling across the package move: pickles written before the library was split into
subpackages name classes by their old module (``mllife.split.SplitSet``); this maps each
old name to where the class lives now, so earlier runs can still be resumed and earlier
scikit-learn artifacts (whose table preprocessor holds ``ColumnConfig`` objects) still
load. Only names are remapped; what may be unpickled at all is decided by the callers
(a signed step output, an artifact whose hash the store recorded)."""

from __future__ import annotations

import io
import pickle

__all__ = ["MOVED", "loads"]

#: old module -> new module, for every module the package move renamed
MOVED = {
    "mllife._policy_config": "mllife.config.policy",
    "mllife._ops_config": "mllife.config.ops",
    "mllife.config": "mllife.config.project",
    "mllife.store": "mllife.storage.store",
    "mllife.versioning": "mllife.storage.dvc",
    "mllife.artifacts": "mllife.storage.artifacts",
    "mllife.data": "mllife.data.images",
    "mllife.tables": "mllife.data.tables",
    "mllife.split": "mllife.data.split",
    "mllife.datasets": "mllife.data.stage",
    "mllife.annotations": "mllife.data.annotations",
    "mllife.features": "mllife.preprocess.images",
    "mllife.table_features": "mllife.preprocess.tables",
    "mllife.column_batch": "mllife.preprocess.column_batch",
    "mllife.registry": "mllife.models.registry",
    "mllife.search": "mllife.models.search",
    "mllife.training": "mllife.models.training",
    "mllife.evaluation": "mllife.evaluation.candidate",
    "mllife.policy": "mllife.promotion.policy",
    "mllife.lineage": "mllife.promotion.lineage",
    "mllife.problems": "mllife.problems.registry",
    "mllife.problem_scoring": "mllife.problems.scoring",
    "mllife.drift": "mllife.monitoring.drift",
    "mllife._drift": "mllife.monitoring.drift",
    "mllife.monitoring": "mllife.monitoring.batch",
    "mllife.served": "mllife.monitoring.traffic",
    "mllife.keys": "mllife.serve.keys",
    "mllife.reports": "mllife.reporting.status",
    "mllife.monitoring_section": "mllife.reporting.monitoring_section",
    "mllife.problem_section": "mllife.reporting.problem_section",
}

#: classes of one old module that went to different new ones
_SPLIT = {
    ("mllife.deployment", "Challenger"): "mllife.promotion.challenger",
    ("mllife.deployment", "PromotionResult"): "mllife.promotion.deploy",
    ("mllife.policy", "Gate"): "mllife.promotion.gates",
    ("mllife.store", "Deployment"): "mllife.storage.queries",
    ("mllife.problems", "ScoreResult"): "mllife.problems.versions",
}


class _Renaming(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        module = _SPLIT.get((module, name)) or MOVED.get(module, module)
        return super().find_class(module, name)


def loads(data: bytes):
    """``pickle.loads``, with classes of the old layout found in the new one."""
    return _Renaming(io.BytesIO(data)).load()
