"""The settings file of a production-profile run (RUN_DIR/env, written by scripts/run-scale), for bench scripts.

No imports beyond the standard library and no side effects, so any bench script can import it (bench/ is not a
package: a script puts its own folder on sys.path first).
"""
from __future__ import annotations

from pathlib import Path


def read_env(path: str) -> dict[str, str]:
    """The KEY=value lines scripts/run-scale writes."""
    pairs = (line.split("=", 1) for line in Path(path).read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}
