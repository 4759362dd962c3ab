"""Copying addresses, stores and channels from Omnitron (setup steps 4 to 6, admins only).

Each kind has the vendor's three endpoints: is_required/, execute/ and get_async_status/.
"""
from __future__ import annotations

from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import operation
from portal.api.schemas import Answer, Body, Query, QueryInt
from portal.extensions import db
from portal.sync import service as sync

# kind -> the vendor's URL prefix for its is_required / execute / get_async_status endpoints
SYNC_PREFIXES = {"addresses": "/oms/setup/addresses/", "stock_locations": "/oms/stock_locations/",
                 "channels": "/oms/channels/"}


class RequiredCheck(Answer):
    """Whether the kind's data is missing or out of sync with Omnitron, and why."""

    kind: str
    is_required: bool
    reason: str
    local_count: int
    remote_count: int | None


class SyncJob(Answer):
    """A copy job with its status, progress and counters; a kind never copied is status not_started."""

    job_id: int | None
    kind: str
    status: str = Field(json_schema_extra={"examples": ["not_started", "queued", "running", "done", "failed"]})
    progress: int = Field(description="Percent done.")
    processed: int
    total: int
    created: int
    updated: int
    unchanged: int
    failed: int
    removed: int
    changed_only: bool
    error: str
    resumed_from: int | str | None
    created_at: str | None = Field(json_schema_extra={"format": "date-time"})
    started_at: str | None = Field(json_schema_extra={"format": "date-time"})
    heartbeat_at: str | None = Field(json_schema_extra={"format": "date-time"})
    finished_at: str | None = Field(json_schema_extra={"format": "date-time"})


class SyncRequest(Body):
    """How to copy: everything (default), or only what changed since the last copy."""

    changed_only: bool = Field(False, description="Read only what changed since the last copy.")


class SyncStatusQuery(Query):
    """Which job to show: the newest one unless job_id names another."""

    job_id: QueryInt | None = Field(None, description="A job of this kind; the newest when left out.")


def sync_is_required(kind: str):
    """Whether the kind's data is missing or out of sync with Omnitron, and why."""
    check = sync.check_required(db.session, kind)
    return RequiredCheck(kind=kind, is_required=check.required, reason=str(check.reason),
                         local_count=check.local_count, remote_count=check.remote_count)


def sync_execute(kind: str, body: SyncRequest):
    """Start copying the kind from Omnitron on the job queue; answers the job."""
    job = sync.execute(db.session, kind, user_id=caller().user_id, changed_only=body.changed_only)
    return SyncJob.model_validate(sync.job_json(job, kind))


def sync_get_async_status(kind: str, query: SyncStatusQuery):
    """The newest job of the kind (or ?job_id=) with its status, progress and counters."""
    return SyncJob.model_validate(sync.job_json(sync.get_job(db.session, kind, query.job_id), kind))


for _kind, _prefix in SYNC_PREFIXES.items():
    _what = _kind.replace("_", " ")
    operation("GET", f"{_prefix}is_required/", endpoint=f"sync_{_kind}_is_required", defaults={"kind": _kind},
              answer=RequiredCheck, tag="omnitron copy", errors=("502",),
              summary=f"Whether the {_what} need copying from Omnitron (admins only).")(sync_is_required)
    operation("POST", f"{_prefix}execute/", endpoint=f"sync_{_kind}_execute", defaults={"kind": _kind},
              body=SyncRequest, body_required=False, answer=SyncJob, status=202, errors=("409",),
              tag="omnitron copy",
              summary=f"Start copying the {_what} from Omnitron on the job queue (admins only).")(sync_execute)
    operation("GET", f"{_prefix}get_async_status/", endpoint=f"sync_{_kind}_get_async_status",
              defaults={"kind": _kind}, query=SyncStatusQuery, answer=SyncJob, errors=("404",), tag="omnitron copy",
              summary=f"The newest copy job of the {_what}, or ?job_id= (admins only).")(sync_get_async_status)
