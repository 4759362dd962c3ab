"""Failure injection: make a path (and page) answer an error, answer late, or drop the connection."""
from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field

FAULT_KEYS = ("path", "page", "method", "status", "delay", "drop", "times")


@dataclass
class Fault:
    """One injected failure. `times` None means every matching request; otherwise it wears out."""

    path: str
    page: int | None = None
    method: str | None = None
    status: int | None = None
    delay: float = 0.0
    drop: bool = False
    times: int | None = 1
    id: int = 0
    hits: int = 0

    def matches(self, method: str, path: str, page: int) -> bool:
        """Whether a request is one this fault applies to (a path ending in * matches a prefix)."""
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method and self.method.upper() != method:
            return False
        if self.page is not None and self.page != page:
            return False
        if self.path.endswith("*"):
            return path.startswith(self.path[:-1])
        return path.rstrip("/") == self.path.rstrip("/")


def fault_from_json(data: object) -> Fault:
    """A fault from a JSON object. Raises ValueError naming what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("path"), str) or not data["path"].startswith("/"):
        raise ValueError('A fault needs a "path" starting with "/".')
    unknown = set(data) - set(FAULT_KEYS)
    if unknown:
        raise ValueError(f"Unknown fault keys: {', '.join(sorted(unknown))}. Known: {', '.join(FAULT_KEYS)}.")
    status = data.get("status")
    if status is not None and (not isinstance(status, int) or not 400 <= status <= 599):
        raise ValueError('"status" must be an HTTP error status (400-599).')
    times = data.get("times", 1)
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ValueError('"times" must be a positive integer, or null for "always".')
    delay = data.get("delay", 0) or 0
    if not isinstance(delay, (int, float)) or not 0 <= delay <= 300:
        raise ValueError('"delay" must be a number of seconds between 0 and 300.')
    if status is None and not delay and not data.get("drop"):
        raise ValueError('A fault needs at least one of "status", "delay" or "drop".')
    page = data.get("page")
    if page is not None and (not isinstance(page, int) or page < 1):
        raise ValueError('"page" must be a page number (1 or more).')
    return Fault(path=data["path"], page=page, method=data.get("method"), status=status, delay=float(delay),
                 drop=bool(data.get("drop")), times=times)


@dataclass
class FaultPlan:
    """The faults currently armed; thread-safe, as the sandbox serves requests on several threads."""

    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 1

    def add(self, fault: Fault) -> Fault:
        """Arm a fault; returns it with its id."""
        with self.lock:
            fault.id = self.next_id
            self.next_id += 1
            self.faults.append(fault)
            return fault

    def take(self, method: str, path: str, page: int) -> Fault | None:
        """The first armed fault matching a request, counting the hit; None if the request runs normally."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(method, path, page):
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        """Disarm every fault."""
        with self.lock:
            self.faults.clear()

    def describe(self) -> list[dict]:
        """The faults as JSON, with how often each has fired."""
        with self.lock:
            return [asdict(f) for f in self.faults]
