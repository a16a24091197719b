"""Known problems: the registry of problems and their patterns, imports, incremental
scoring of every model version, and the problems shipped with the default project."""
