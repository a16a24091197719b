"""Storage: the DuckDB store (engine, schema migrations), atomic files, locks, signed
files and DVC -- the floor every stage above keeps its state on."""
