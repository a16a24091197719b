"""``mllife status --show-test``: every candidate of the newest lineage on the sealed test
set, for those who insist. A run reads the test set for its chosen challenger only; each
read made here is recorded (asset ``show-test``) and counts toward the wear the report and
``mllife status`` warn about."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import dagster as dg

from assets.graph import step_outputs
from assets.runtime.run import prepare_instance
from mllife.config.project import load_config
from mllife.evaluation.candidate import with_test
from mllife.evaluation.test_budget import sealed_set_wear
from mllife.storage.store import Store

__all__ = ["sealed_test_scores"]

SHOW_TEST_ASSET = "show-test"


def sealed_test_scores(config_path: Path | str, *, profile: str = "local") -> list[str]:
    """Lines: each candidate's sealed test accuracy and macro F1 (the chosen challenger's
    from its run, the others read now), then how worn the test set is."""
    config = load_config(config_path)
    instance = prepare_instance(config, profile)
    values = step_outputs.for_project(config)

    def latest(key: str):
        # the newest materialization's own value (lineage), not "the newest file"
        event = instance.get_latest_materialization_event(dg.AssetKey(key))
        if event is None or not values.path_for(event.run_id, dg.AssetKey(key)).is_file():
            return None
        return values.load_value(event.run_id, key)

    splits, challenger = latest("splits"), latest("challenger")
    if splits is None:
        return ["no split yet: run `mllife run` first"]
    store = Store(config.store_path)
    chosen = challenger.evaluation if challenger is not None else None
    lines = [
        "sealed test set, shown on request (each read is recorded; choosing a candidate by"
        " these numbers turns the test set into a second validation set):"
    ]
    width = max(len(spec.name) for spec in config.models_to_train)
    for spec in config.models_to_train:
        evaluation = latest(f"evaluation_{spec.name}")
        name = f"{spec.name:<{width}}"
        if evaluation is None or evaluation.split_version != splits.split_version:
            lines.append(f"  {name}  not evaluated on the current split")
            continue
        if chosen is not None and chosen.ref.model_hash == evaluation.ref.model_hash:
            tested, note = chosen, "challenger, read by its run"
        else:
            tested = with_test(evaluation, splits, config=config, store=store, run_id=None,
                               asset=SHOW_TEST_ASSET)  # fmt: skip
            note = "read now"
        t = tested.test
        lines.append(
            f"  {name}  test accuracy {t.accuracy:.4f} {t.interval_text('accuracy')}"
            f" macro F1 {t.macro_f1:.4f} ({note})"
        )
    wear = sealed_set_wear(store, splits.split_version, config.promotion.max_test_reads)
    lines.append(("WARNING: " if wear.worn else "") + wear.describe())
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m assets.runtime.sealed_test --config PATH``: what ``mllife status --show-test``
    runs (the library never imports Dagster)."""
    from mllife.storage.instance_settings import PROFILES

    parser = argparse.ArgumentParser(prog="mllife status --show-test")
    parser.add_argument("--config", required=True)
    parser.add_argument("--profile", default="local", choices=PROFILES)
    args = parser.parse_args(argv)
    for line in sealed_test_scores(args.config, profile=args.profile):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
