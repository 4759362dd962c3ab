"""Scheduled jobs (setup step 15, admins only): their schedules, parameters and runs."""
from __future__ import annotations

from typing import Any

from pydantic import Field
from sqlalchemy import select

from portal.api.auth import caller
from portal.api.operations import operation
from portal.api.pagination import PageQuery, keyset_page
from portal.api.resources.common import usernames
from portal.api.schemas import Answer, Body, Timestamp, optional
from portal.extensions import db
from portal.jobs import job_types, scheduler
from portal.jobs.models import JobRun as JobRunRow
from portal.jobs.models import ScheduledJob as JobRow

_JOB_TYPES: dict[str, Any] = {"enum": list(job_types.JOB_TYPES)}


class Job(Answer):
    """A scheduled job."""

    id: int
    name: str
    job_type: str = Field(json_schema_extra=_JOB_TYPES)
    schedule: str = Field(description="Five cron fields, e.g. 30 2 * * * (every day at 02:30).")
    parameters: dict[str, Any]
    enabled: bool
    next_run_at: Timestamp | None = Field(description="null while the job is switched off.")
    created_at: Timestamp | None
    updated_at: Timestamp | None

    @classmethod
    def of(cls, job: JobRow) -> Job:
        """A job row as the API shows it."""
        return cls(id=job.id, name=job.name, job_type=job.job_type, schedule=job.schedule,
                   parameters=job.parameters or {}, enabled=job.enabled, next_run_at=job.next_run_at,
                   created_at=job.created_at, updated_at=job.updated_at)


class JobRun(Answer):
    """One run of a job: how it was started, how it ended and what it reported."""

    id: int
    job_id: int
    trigger: str
    status: str
    result: str
    started_by: str | None
    started_at: Timestamp | None
    finished_at: Timestamp | None

    @classmethod
    def of(cls, run: JobRunRow, names: dict[int, str]) -> JobRun:
        """A run row as the API shows it."""
        return cls(id=run.id, job_id=run.job_id, trigger=run.trigger, status=run.status, result=run.result or "",
                   started_by=names.get(run.started_by_id) if run.started_by_id else None,
                   started_at=run.started_at, finished_at=run.finished_at)


class JobRunPage(Answer):
    """A page of a job's runs, newest first."""

    results: list[JobRun]
    next: str | None = Field(json_schema_extra={"format": "uri"}, description="Older runs; null on the last page.")
    previous: str | None = Field(json_schema_extra={"format": "uri"}, description="Newer runs; null on the first.")


class JobStarted(Answer):
    """A run queued by run_now."""

    run_id: int
    run: JobRun


class JobFields(Body):
    """The fields of a job; a PATCH may send any of them (and the read-only ones back)."""

    name: str = optional(max_length=200)
    job_type: str = optional(max_length=64, json_schema_extra=_JOB_TYPES)
    schedule: str = optional(max_length=200, description="Five cron fields.")
    parameters: dict[str, Any] = optional(description="The job type's parameters, e.g. {\"days\": 3}.")
    enabled: bool = optional()


class JobPatch(JobFields):
    """Fields to change; fields left out keep their values."""

    id: int | None = Field(None, json_schema_extra={"readOnly": True})
    next_run_at: str | None = Field(None, json_schema_extra={"readOnly": True})
    created_at: str | None = Field(None, json_schema_extra={"readOnly": True})
    updated_at: str | None = Field(None, json_schema_extra={"readOnly": True})


class NewJob(JobFields):
    """A new scheduled job."""

    name: str = Field(max_length=200)
    job_type: str = Field(max_length=64, json_schema_extra=_JOB_TYPES)
    schedule: str = Field(max_length=200, description="Five cron fields.")


def _job_input(body: JobFields, job: JobRow | None) -> scheduler.JobInput:
    """The job form's input: the fields sent over the stored job's values."""
    sent = body.model_fields_set

    def value(name: str, default: object) -> Any:
        """The field sent, else the stored value (or the default for a new job)."""
        if name in sent:
            return getattr(body, name)
        return getattr(job, name) if job is not None else default

    return scheduler.JobInput(name=value("name", "").strip(), job_type=value("job_type", ""),
                              schedule=value("schedule", "").strip(), parameters=value("parameters", {}) or {},
                              enabled=value("enabled", True))


@operation("GET", "/oms/jobs/", summary="Every scheduled job by name (admins only).", answer=list[Job], tag="jobs")
def list_jobs():
    """Every scheduled job by name."""
    return [Job.of(job) for job in scheduler.list_jobs(db.session)]


@operation("POST", "/oms/jobs/", summary="Add a scheduled job (admins only).", body=NewJob, answer=Job, status=201,
           tag="jobs", description="The schedule and parameters are checked as in the wizard.",
           example={"name": "Purge old answers", "job_type": "purge_idempotency_records", "schedule": "30 2 * * *",
                    "parameters": {"days": 3}})
def create_job(body: NewJob):
    """Add a scheduled job."""
    job = scheduler.create_job(db.session, _job_input(body, None), user_id=caller().user_id)
    return Job.of(job)


@operation("GET", "/oms/jobs/<int:job_id>/", summary="One scheduled job (admins only).", answer=Job,
           errors=("404",), tag="jobs")
def show_job(job_id: int):
    """One scheduled job."""
    return Job.of(scheduler.get_job(db.session, job_id))


@operation("PATCH", "/oms/jobs/<int:job_id>/", summary="Change a scheduled job (admins only).", body=JobPatch,
           answer=Job, errors=("404",), tag="jobs")
def update_job(job_id: int, body: JobPatch):
    """Change a scheduled job; fields left out keep their values."""
    job = scheduler.get_job(db.session, job_id)
    job = scheduler.update_job(db.session, job.id, _job_input(body, job), user_id=caller().user_id)
    return Job.of(job)


@operation("DELETE", "/oms/jobs/<int:job_id>/", summary="Delete a scheduled job and its runs (admins only).",
           status=204, errors=("404",), tag="jobs")
def delete_job(job_id: int):
    """Delete a scheduled job and its runs."""
    scheduler.delete_job(db.session, job_id, user_id=caller().user_id)


@operation("POST", "/oms/jobs/<int:job_id>/run_now/", summary="Run a job now on the job queue (admins only).",
           answer=JobStarted, status=202, errors=("404", "409"), tag="jobs",
           description="202 with the run; follow it in runs/.")
def run_job_now(job_id: int):
    """Run a job now on the job queue."""
    run = scheduler.run_now(db.session, job_id, user_id=caller().user_id)
    return JobStarted(run_id=run.id, run=JobRun.of(run, usernames({run.started_by_id})))


@operation("GET", "/oms/jobs/<int:job_id>/runs/", summary="A job's runs, newest first, page by page (admins only).",
           query=PageQuery, answer=JobRunPage, errors=("404",), tag="jobs")
def list_job_runs(job_id: int, query: PageQuery):
    """A page of a job's runs, newest first."""
    job = scheduler.get_job(db.session, job_id)
    rows, next_url, previous_url = keyset_page(
        db.session, select(JobRunRow).where(JobRunRow.job_id == job.id), JobRunRow.id, query, newest_first=True,
        endpoint="api.list_job_runs", job_id=job.id)
    names = usernames({run.started_by_id for run in rows})
    return JobRunPage(results=[JobRun.of(run, names) for run in rows], next=next_url, previous=previous_url)
