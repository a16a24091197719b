"""What makes a materialization count, shared by the graph (which writes it) and the
planner (``assets.runtime.memo``, which reads it)."""

__all__ = ["BLOCKING_CHECKS", "PROBLEMS_VERSION_TAG"]

#: the tag on problem_scores' materializations: the known problems it scored
PROBLEMS_VERSION_TAG = "mllife/problems_version"

#: the blocking checks guarding each asset (a test holds this to the definitions): a
#: materialization they did not pass on is never reused
BLOCKING_CHECKS: dict[str, tuple[str, ...]] = {
    "raw_data": ("raw_data_contract",),
    "clean_data": ("class_set", "clean_data_contract"),
    "splits": ("no_leakage", "problem_files"),
}
