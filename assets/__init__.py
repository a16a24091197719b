"""The Dagster asset graph over the mllife library (thin: calls mllife, adds metadata)."""
