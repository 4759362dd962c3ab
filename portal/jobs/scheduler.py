"""Scheduled jobs (setup step 15): cron schedules, saving jobs, running them on the job queue, recording runs.

Schedules are 5-field cron expressions (minute hour day-of-month month day-of-week) read in the
portal's display time zone, so "0 9 * * 1" means Monday 09:00 where the brand is. A periodic task
ticks every minute and claims due jobs with a conditional update, so two workers never run the same
due job twice; each run then goes on the queue as its own task. A job's failure is recorded on its
run and never escapes into the worker.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import current_app
from huey import crontab
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.db_types import utcnow
from portal.errors import NotFound, ValidationFailed
from portal.extensions import db
from portal.jobs import job_types
from portal.jobs.models import JobRun, ScheduledJob
from portal.queue import app_context, huey
from portal.settings import service as settings
from portal.setup import service as wizard

log = logging.getLogger(__name__)

RUNNING, SUCCEEDED, FAILED = "running", "succeeded", "failed"
MANUAL, SCHEDULE = "manual", "schedule"
AUDIT_AREA = "scheduled_job"
STEP_KEY = "jobs"
# A run still "running" after this long was lost with its worker; pages stop polling for it.
STALE_RUN = timedelta(minutes=15)
# Five years cover every day-of-month/month combination, 29 February included.
SEARCH_DAYS = 366 * 5

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_NAMES = {
    3: {n: i for i, n in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)},
    4: {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression: the allowed values of each field."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    def matches_day(self, day: date) -> bool:
        """True when the schedule fires on this date (cron's rule: day of month OR day of week when both are set)."""
        if day.month not in self.months:
            return False
        by_day = day.day in self.days
        by_weekday = day.isoweekday() % 7 in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return by_weekday
        if self.any_weekday:
            return by_day
        return by_day or by_weekday


def _number(text: str, index: int, name: str, low: int, high: int) -> int:
    """One value of a field: a number or (month, weekday) a three-letter name. Raises ValidationFailed."""
    value = _NAMES.get(index, {}).get(text.lower())
    if value is None:
        if not text.isdigit():
            raise ValidationFailed(f"{name.capitalize()}: {text!r} is not a number.", field="schedule")
        value = int(text)
    if not low <= value <= high:
        raise ValidationFailed(f"{name.capitalize()} must be from {low} to {high}; {text} is not.", field="schedule")
    return value


def _parse_field(text: str, index: int) -> set[int]:
    """The values one field allows: *, a, a-b, with /n steps, comma-separated. Raises ValidationFailed."""
    name, low, high = _FIELDS[index]
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise ValidationFailed(f"{name.capitalize()}: an empty item in {text!r}.", field="schedule")
        base, _, step_text = item.partition("/")
        step = 1
        if _:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ValidationFailed(f"{name.capitalize()}: the step in {item!r} must be a number above 0.",
                                       field="schedule")
            step = int(step_text)
        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _number(first, index, name, low, high), _number(last, index, name, low, high)
            if start > end:
                raise ValidationFailed(f"{name.capitalize()}: the range {base!r} runs backwards.", field="schedule")
        else:
            start = _number(base, index, name, low, high)
            # "5/15" means from 5 to the end in steps of 15, as in common crons.
            end = high if _ else start
        values.update(range(start, end + 1, step))
    return values


def parse_cron(expression: str) -> CronSchedule:
    """Parse a 5-field cron expression (minute hour day month weekday). Raises ValidationFailed."""
    text = " ".join(str(expression or "").split())
    parts = text.split(" ") if text else []
    if len(parts) != 5:
        raise ValidationFailed("A schedule has 5 fields: minute hour day-of-month month day-of-week, "
                               "like 0 3 * * * (every day at 03:00).", field="schedule")
    fields = [_parse_field(part, i) for i, part in enumerate(parts)]
    weekdays = frozenset(d % 7 for d in fields[4])
    return CronSchedule(expression=text, minutes=tuple(sorted(fields[0])), hours=tuple(sorted(fields[1])),
                        days=frozenset(fields[2]), months=frozenset(fields[3]), weekdays=weekdays,
                        any_day=parts[2].startswith("*"), any_weekday=parts[4].startswith("*"))


def _zone(tz: str | ZoneInfo | None) -> ZoneInfo:
    """The time zone schedules are read in (DISPLAY_TIMEZONE by default)."""
    if isinstance(tz, ZoneInfo):
        return tz
    name = tz or current_app.config["DISPLAY_TIMEZONE"]
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise ValidationFailed(f"Unknown time zone {name!r}.") from None


def next_run(schedule: str | CronSchedule, after: datetime, tz: str | ZoneInfo | None = None) -> datetime | None:
    """The first time strictly after `after` when the schedule fires, as an aware UTC datetime.

    None when it never fires (like 0 0 30 2 *). Raises ValidationFailed for a bad expression.
    """
    cron = schedule if isinstance(schedule, CronSchedule) else parse_cron(schedule)
    zone = _zone(tz)
    if after.tzinfo is None:
        after = after.replace(tzinfo=timezone.utc)
    start = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
    day = start.date()
    for _ in range(SEARCH_DAYS):
        if cron.matches_day(day):
            first_day = day == start.date()
            for hour in cron.hours:
                if first_day and hour < start.hour:
                    continue
                for minute in cron.minutes:
                    if first_day and hour == start.hour and minute < start.minute:
                        continue
                    # A wall time skipped by a DST change maps to the instant just after it.
                    moment = datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(timezone.utc)
                    if moment > after:
                        return moment
        day += timedelta(days=1)
    return None


def describe_next_runs(schedule: str, count: int = 3, tz: str | None = None) -> list[datetime]:
    """The next few times a schedule fires from now (for the form's preview)."""
    cron = parse_cron(schedule)
    times, after = [], utcnow()
    for _ in range(count):
        after = next_run(cron, after, tz)
        if after is None:
            break
        times.append(after)
    return times


@dataclass
class JobInput:
    """What the job form sends."""

    name: str
    job_type: str
    schedule: str
    parameters: object
    enabled: bool

    @classmethod
    def from_form(cls, form: Mapping) -> "JobInput":
        """Read a submitted form."""
        return cls(name=str(form.get("name") or "").strip(), job_type=str(form.get("job_type") or ""),
                   schedule=str(form.get("schedule") or "").strip(), parameters=form.get("parameters", ""),
                   enabled=form.get("enabled") in ("on", "true", "1", True))


def validate_job(session: Session, data: JobInput, job_id: int | None = None) -> dict:
    """Check a job's fields and return them cleaned, with its next run. Raises ValidationFailed."""
    if not data.name:
        raise ValidationFailed("Give the job a name.", field="name")
    if len(data.name) > 120:
        raise ValidationFailed("The name is too long (at most 120 characters).", field="name")
    taken = session.scalar(select(ScheduledJob.id).where(ScheduledJob.name == data.name))
    if taken is not None and taken != job_id:
        raise ValidationFailed(f"A job named {data.name!r} already exists.", field="name")
    job_types.get_type(data.job_type)
    cron = parse_cron(data.schedule)
    upcoming = next_run(cron, utcnow())
    if upcoming is None:
        raise ValidationFailed(f"The schedule {cron.expression} never fires (no such date).", field="schedule")
    parameters = job_types.validate_parameters(data.job_type, data.parameters)
    return {"name": data.name, "job_type": data.job_type, "schedule": cron.expression, "parameters": parameters,
            "enabled": data.enabled, "next_run_at": upcoming if data.enabled else None}


def list_jobs(session: Session) -> list[ScheduledJob]:
    """Every scheduled job by name."""
    return list(session.scalars(select(ScheduledJob).order_by(ScheduledJob.name)))


def get_job(session: Session, job_id: int) -> ScheduledJob:
    """One job. Raises NotFound."""
    job = session.get(ScheduledJob, job_id)
    if job is None:
        raise NotFound("No such job.")
    return job


def create_job(session: Session, data: JobInput, *, user_id: int | None = None) -> ScheduledJob:
    """Validate and save a new job, with an audit row. Raises ValidationFailed."""
    job = ScheduledJob(**validate_job(session, data))
    session.add(job)
    settings.audit(session, job.name[:80], user_id=user_id, area=AUDIT_AREA, action="create")
    refresh_step(session, user_id=user_id)
    session.commit()
    return job


def update_job(session: Session, job_id: int, data: JobInput, *, user_id: int | None = None) -> ScheduledJob:
    """Validate and save changes to a job (audited); its next run is worked out again.

    Raises NotFound or ValidationFailed.
    """
    job = get_job(session, job_id)
    for key, value in validate_job(session, data, job_id=job.id).items():
        setattr(job, key, value)
    job.updated_at = utcnow()
    settings.audit(session, job.name[:80], user_id=user_id, area=AUDIT_AREA, action="update")
    refresh_step(session, user_id=user_id)
    session.commit()
    return job


def delete_job(session: Session, job_id: int, *, user_id: int | None = None) -> str:
    """Delete a job and its runs (audited); returns its name. Raises NotFound."""
    job = get_job(session, job_id)
    name = job.name
    settings.audit(session, name[:80], user_id=user_id, area=AUDIT_AREA, action="delete")
    session.execute(JobRun.__table__.delete().where(JobRun.job_id == job.id))
    session.delete(job)
    refresh_step(session, user_id=user_id)
    session.commit()
    return name


def recent_runs(session: Session, limit: int = 20) -> list[tuple[JobRun, ScheduledJob, str | None]]:
    """The latest runs with their jobs and who started them, newest first."""
    return list(session.execute(
        select(JobRun, ScheduledJob, User.username)
        .join(ScheduledJob, ScheduledJob.id == JobRun.job_id)
        .outerjoin(User, User.id == JobRun.started_by_id)
        .order_by(JobRun.id.desc()).limit(limit)
    ).tuples())


def runs_in_progress(runs: list[tuple]) -> bool:
    """True while one of these runs is still going (and not lost with a dead worker)."""
    now = utcnow()
    return any(row[0].status == RUNNING and now - row[0].started_at < STALE_RUN for row in runs)


def run_now(session: Session, job_id: int, *, user_id: int | None) -> JobRun:
    """Record a manual run and put it on the queue. Raises NotFound."""
    job = get_job(session, job_id)
    run = JobRun(job_id=job.id, trigger=MANUAL, status=RUNNING, started_by_id=user_id, started_at=utcnow())
    session.add(run)
    session.commit()
    run_id = run.id
    execute_run_task(run_id)
    # In immediate mode the task ran already and committed through this same session.
    return session.get(JobRun, run_id, populate_existing=True)


def execute_run(session: Session, run_id: int) -> JobRun | None:
    """Do a recorded run's work and store how it ended; any failure is caught and recorded."""
    run = session.get(JobRun, run_id)
    if run is None or run.status != RUNNING:
        return run  # deleted with its job, or already done (a task delivered twice)
    job = session.get(ScheduledJob, run.job_id)
    try:
        job_type = job_types.get_type(job.job_type)
        params = job_types.validate_parameters(job.job_type, job.parameters or {})
        result, status = job_type.run(session, params), SUCCEEDED
    except Exception as exc:  # a job's bug must end as a failed run, not take the worker down
        session.rollback()
        log.exception("scheduled job %s (run %s) failed", job.name if job else "?", run_id)
        detail = getattr(exc, "message", None) or str(exc) or exc.__class__.__name__
        result, status = f"Failed: {detail}", FAILED
    run = session.get(JobRun, run_id, populate_existing=True)
    if run is None:
        return None
    run.status, run.result, run.finished_at = status, str(result)[:4000], utcnow()
    session.commit()
    return run


def claim_due_jobs(session: Session, now: datetime | None = None) -> list[int]:
    """Start a run of every enabled job whose next run is due and move its next run on; returns the run ids.

    Each claim is a conditional update on next_run_at, so a job is claimed once even when
    several workers tick at the same minute.
    """
    now = now or utcnow()
    due = list(session.execute(
        select(ScheduledJob.id, ScheduledJob.schedule, ScheduledJob.next_run_at)
        .where(ScheduledJob.enabled.is_(True), ScheduledJob.next_run_at.is_not(None),
               ScheduledJob.next_run_at <= now)
        .order_by(ScheduledJob.next_run_at, ScheduledJob.id)
    ))
    run_ids = []
    for job_id, schedule, due_at in due:
        try:
            following = next_run(schedule, now)
        except ValidationFailed:
            following = None  # a schedule edited outside the portal: stop it rather than loop every minute
        claimed = session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.id == job_id, ScheduledJob.next_run_at == due_at)
            .values(next_run_at=following)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            session.rollback()
            continue
        run = JobRun(job_id=job_id, trigger=SCHEDULE, status=RUNNING, started_at=now)
        session.add(run)
        session.commit()
        run_ids.append(run.id)
    return run_ids


def run_due_jobs(session: Session, now: datetime | None = None) -> list[int]:
    """Claim the due jobs and queue a run of each; returns the run ids."""
    run_ids = claim_due_jobs(session, now)
    for run_id in run_ids:
        execute_run_task(run_id)
    return run_ids


def step_check(session: Session) -> tuple[bool, str]:
    """Step 15 is done when at least one enabled job exists."""
    enabled = session.scalars(select(ScheduledJob.name).where(ScheduledJob.enabled.is_(True))).all()
    if not enabled:
        return False, "Add at least one enabled job."
    return True, f"{len(enabled)} enabled job(s)."


def refresh_step(session: Session, *, user_id: int | None) -> tuple[bool, str]:
    """Bring step 15 in line with the jobs as they are (not committed); returns its check.

    Every change to jobs here calls it, so the wizard's page and the API settle the step the same way.
    """
    session.flush()
    ok, note = step_check(session)
    wizard.settle(session, STEP_KEY, ok, user_id=user_id, note=note)
    return ok, note


@huey.task()
def execute_run_task(run_id: int) -> None:
    """Queue task: carry out one recorded run."""
    with app_context():
        execute_run(db.session, run_id)


@huey.periodic_task(crontab(minute="*"))
def run_due_jobs_task() -> None:
    """Every minute: start the enabled jobs whose time has come."""
    with app_context():
        try:
            run_due_jobs(db.session)
        except Exception:  # a database hiccup must not stop next minute's tick
            db.session.rollback()
            log.exception("scheduled jobs tick failed")
