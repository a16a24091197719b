"""Dagster concurrency pools for the steps that use a one-writer resource.

The instance settings (``mllife.storage.instance_settings``) give every pool one slot,
so across all runs at most one step at a time ingests into or records data in the
metrics store (a DuckDB file: one writing process), runs DVC (one lock per repo) or
decides and switches the champion. Training and evaluation steps, which write the store
only briefly after minutes of compute, stay parallel; the store retries its short
transactions itself.
"""

STORE = "mllife_store"
DVC = "mllife_dvc"
CHAMPION = "mllife_champion"
