"""The order import (setup step 8's "Fetch orders now", admins only): start a run, read the last runs."""
from __future__ import annotations

from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import operation
from portal.api.resources.common import usernames
from portal.api.schemas import Answer, Body, Query, QueryLimit, Timestamp
from portal.extensions import db
from portal.orders import service as orders
from portal.runs import service as runs_service

MAX_IMPORT_RUNS = 50


class ImportRun(Answer):
    """An order import run with its counts and summary sentence."""

    id: int
    status: str
    trigger: str
    full: bool
    fetched: int
    created: int
    already_imported: int
    skipped: int
    failed: int
    skip_reasons: dict[str, int]
    problems: list[str]
    error: str
    summary: str
    stale: bool = Field(description="The run stopped reporting: its worker died; starting again takes it over.")
    started_by: str | None
    created_at: Timestamp | None
    started_at: Timestamp | None
    heartbeat_at: Timestamp | None
    finished_at: Timestamp | None

    @classmethod
    def of(cls, run, names: dict[int, str]) -> ImportRun:
        """A run row as the API shows it."""
        return cls(id=run.id, status=run.status, trigger=run.trigger, full=run.full, fetched=run.fetched,
                   created=run.created, already_imported=run.already_imported, skipped=run.skipped,
                   failed=run.failed, skip_reasons=dict(run.skip_reasons or {}), problems=list(run.problems or []),
                   error=run.error or "", summary=str(orders.summary_text(run)), stale=runs_service.is_stale(run),
                   started_by=names.get(run.started_by_id) if run.started_by_id else None,
                   created_at=run.created_at, started_at=run.started_at, heartbeat_at=run.heartbeat_at,
                   finished_at=run.finished_at)


class ImportStarted(Answer):
    """A run started (queued, or already done when the queue runs tasks at once)."""

    run_id: int
    run: ImportRun


class ImportRuns(Answer):
    """The last runs, newest first, and whether one is running."""

    results: list[ImportRun]
    running: bool


class ImportRequest(Body):
    """How to import: from the cursor (default) or again from the start date."""

    full: bool = Field(False, description="Read again from ORDER_FILTERING's start date, ignoring the cursor.")


class ImportQuery(Query):
    """How many runs to list."""

    limit: QueryLimit | None = Field(None, description=f"How many runs (default 5, at most {MAX_IMPORT_RUNS}).")


@operation("POST", "/oms/orders/import/", summary="Start fetching orders on the job queue (admins only).",
           body=ImportRequest, body_required=False, answer=ImportStarted, status=202, errors=("409",),
           tag="order import", description="Fetches the orders ORDER_FILTERING chooses; 202 with the run.")
def start_order_import(body: ImportRequest):
    """Start fetching the orders ORDER_FILTERING chooses, on the job queue."""
    run = orders.execute(db.session, user_id=caller().user_id, full=body.full)
    return ImportStarted(run_id=run.id, run=ImportRun.of(run, usernames({run.started_by_id})))


@operation("GET", "/oms/orders/import/", summary="The last order import runs, newest first (admins only).",
           query=ImportQuery, answer=ImportRuns, tag="order import")
def list_order_imports(query: ImportQuery):
    """The last order import runs, newest first, with their summaries."""
    runs = orders.recent_runs(db.session, limit=min(query.limit, MAX_IMPORT_RUNS) if query.limit else 5)
    names = usernames({run.started_by_id for run in runs})
    running = runs_service.is_live(runs[0]) and not runs_service.is_stale(runs[0]) if runs else False
    return ImportRuns(results=[ImportRun.of(run, names) for run in runs], running=running)
