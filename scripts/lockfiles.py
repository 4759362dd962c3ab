"""Lockfile helpers for scripts/lock: the inputs digest stamped on each lock, and the offline check.

Each lock's first line is "# inputs-sha256: <hex>", a digest of the requirement lines of its input file
(and of the files that one includes with -r), comments and blank lines left out, so that editing a comment
does not stale a lock but changing, adding or removing a requirement does.

    python scripts/lockfiles.py digest requirements-dev.txt
    python scripts/lockfiles.py check requirements.txt:requirements.lock requirements-dev.txt:requirements-dev.lock
"""
from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

HEADER = "# inputs-sha256: "
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;\\]+)")


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of one input file, following -r includes, comments and blanks dropped."""
    lines: list[str] = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-r "):
            lines += requirement_lines(path.parent / line[3:].strip())
        else:
            lines.append(line)
    return lines


def digest(path: Path) -> str:
    """The sha256 of an input's requirement lines, one per line."""
    return hashlib.sha256("\n".join(requirement_lines(path)).encode()).hexdigest()


def normalise(name: str) -> str:
    """A package name as PEP 503 compares them: lower case, runs of -_. as one dash."""
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(lock: Path) -> dict[str, tuple[str, bool]]:
    """Each package of a lock: its version, and whether its entry carries at least one sha256 hash."""
    entries: dict[str, tuple[str, bool]] = {}
    current = None
    for raw in lock.read_text().splitlines():
        match = PIN.match(raw)
        if match:
            current = normalise(match.group(1))
            entries[current] = (match.group(3), "--hash=sha256:" in raw)
        elif current and "--hash=sha256:" in raw:
            entries[current] = (entries[current][0], True)
    return entries


def problems(source: Path, lock: Path) -> list[str]:
    """What is wrong with one lock against its input; empty when the lock is current."""
    if not lock.exists():
        return [f"{lock} is missing: run scripts/lock"]
    found: list[str] = []
    first = (lock.read_text().splitlines() or [""])[0]
    if first != HEADER + digest(source):
        found.append(f"{lock} was not generated from the current {source}: run scripts/lock")
    entries = locked(lock)
    for line in requirement_lines(source):
        match = PIN.match(line)
        if not match:
            found.append(f"{source}: '{line}' is not pinned with ==")
            continue
        name, version = normalise(match.group(1)), match.group(3)
        have = entries.get(name, ("absent", True))[0]
        if have != version:
            found.append(f"{lock}: {name} is {have}, {source} asks for {version}: run scripts/lock")
    found += [f"{lock}: {name} has no --hash" for name, (_, hashed) in entries.items() if not hashed]
    return found


def main(argv: list[str]) -> int:
    """digest INPUT prints the digest; check INPUT:LOCK... prints the problems and exits 1 if any."""
    if len(argv) == 2 and argv[0] == "digest":
        print(digest(Path(argv[1])))
        return 0
    if len(argv) >= 2 and argv[0] == "check":
        found = [p for pair in argv[1:] for p in problems(*(Path(part) for part in pair.split(":", 1)))]
        for problem in found:
            print(problem, file=sys.stderr)
        return 1 if found else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
