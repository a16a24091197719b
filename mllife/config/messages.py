"""A configuration file's validation errors in words: the file, each offending key, and
what would be accepted."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

__all__ = ["describe_validation_error"]


def describe_validation_error(exc: ValidationError, file_path: Path) -> str:
    lines = [f"{file_path}: {exc.error_count()} problem(s):"]
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "(top level)"
        if error["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}': remove it or check its spelling")
        elif error["type"] == "missing":
            lines.append(f"  - missing key '{key}'")
        else:
            got = error.get("input")
            lines.append(f"  - key '{key}': {error['msg']} (got {got!r})")
    return "\n".join(lines)
