"""Model shift: has the set of classes in the data changed since the champion?

The articles' "new classes should be added and others are not used any more" is a
decision, not an accident: a stray folder in an image project silently makes a new
class, and a class whose files were moved away silently disappears. The clean data's
classes are compared with the ones the deployed champion knows (its validation
confusion counts in the store); a change passes only when ``[data] classes`` in
``mllife.toml`` declares exactly the new set.
"""

from __future__ import annotations

from dataclasses import dataclass

from mllife.config.project import ProjectConfig
from mllife.storage.store import Store

__all__ = ["ClassSetChange", "class_set_change"]


@dataclass(frozen=True)
class ClassSetChange:
    passed: bool
    current: tuple[str, ...]
    champion: tuple[str, ...] | None
    added: tuple[str, ...]
    removed: tuple[str, ...]
    reason: str


def _champion_classes(store: Store) -> tuple[str, ...] | None:
    if not store.path.exists():
        return None
    current = store.champion()
    if current is None:
        return None
    rows = store.query(
        "SELECT DISTINCT true_label FROM confusion WHERE model_hash = ? AND split = 'validation'",
        [current.model_hash],
    )
    return tuple(sorted(rows["true_label"].to_list())) or None


def class_set_change(config: ProjectConfig, store: Store, labels) -> ClassSetChange:
    """``labels``: the clean data's labels (any iterable of str)."""
    current = tuple(sorted(set(labels)))
    known = _champion_classes(store)
    if known is None:
        return ClassSetChange(
            True, current, None, (), (), f"no champion yet; the data has classes {list(current)}"
        )
    added = tuple(sorted(set(current) - set(known)))
    removed = tuple(sorted(set(known) - set(current)))
    if not added and not removed:
        return ClassSetChange(
            True, current, known, (), (), f"same {len(current)} classes as the champion"
        )
    change = "; ".join(
        part
        for part in (
            f"new classes {list(added)}" if added else "",
            f"classes no longer present {list(removed)}" if removed else "",
        )
        if part
    )
    declared = tuple(sorted(config.data.classes))
    if declared == current:
        return ClassSetChange(
            True, current, known, added, removed, f"{change}: declared in [data] classes"
        )
    return ClassSetChange(
        False,
        current,
        known,
        added,
        removed,
        f"the class set changed since the champion ({change}). If intended, declare the"
        f" new set in {config.path.name}: [data] classes = {list(current)}; otherwise"
        " remove the stray folders or rows. Nothing downstream runs until then",
    )
