"""Promotion: the policy as a registry of gates, the challenger chosen and decided on, and
the deployment history (promote, rollback) and lineage."""
