"""Scheduled jobs (setup step 15): cron schedules, saving jobs, running them on the job queue, recording runs.

Schedules are 5-field cron expressions (minute hour day-of-month month day-of-week) read in the
portal's display time zone, so "0 9 * * 1" means Monday 09:00 where the brand is. croniter reads and
steps through them; this module only checks each field first, to tell the user what is wrong in words.
A periodic task ticks every minute and claims due jobs with a conditional update, so two workers never
run the same due job twice; each run is a background run of kind "scheduled_job" (portal.runs), whose
failure is recorded on the run and never escapes into the worker.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter
from flask import current_app
from flask_babel import gettext as _
from huey import crontab
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from portal.accounts.models import User
from portal.db_types import rowcount, utcnow
from portal.errors import NotFound, ValidationFailed
from portal.extensions import db
from portal.jobs import job_types, schedules
from portal.jobs.models import JobRun, ScheduledJob
from portal.queue import app_context, huey
from portal.runs import service as runs
from portal.settings import service as settings
from portal.setup import service as wizard

log = logging.getLogger(__name__)

KIND = "scheduled_job"
MANUAL, SCHEDULE = "manual", "schedule"
AUDIT_AREA = "scheduled_job"
STEP_KEY = "jobs"
# A job type's run writes no heartbeat while it works: one silent for this long was lost with its worker.
STALE_RUN = timedelta(minutes=15)
# How far croniter looks for a date that fires (29 February needs up to eight years).
SEARCH_YEARS = 10

_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_MONTHS = {name: i for i, name in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], start=1)}
_WEEKDAYS = {name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}


@dataclass(frozen=True)
class CronSchedule:
    """A checked cron expression and the values each field allows (as croniter expands them)."""

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday


def _field_name(index: int) -> str:
    """A field's name for messages, capitalised and translated."""
    return (_("Minute"), _("Hour"), _("Day of month"), _("Month"), _("Day of week"))[index]


def _value(text: str, index: int) -> int:
    """One value of a field: a number or (month, weekday) a three-letter name. Raises ValidationFailed."""
    _name, low, high = _FIELDS[index]
    named = {3: _MONTHS, 4: _WEEKDAYS}.get(index, {}).get(text.lower())
    if named is not None:
        return named
    if not text.isdigit():
        raise ValidationFailed(_("%(field)s: %(text)r is not a number.", field=_field_name(index), text=text),
                               field="schedule")
    value = int(text)
    if not low <= value <= high:
        raise ValidationFailed(_("%(field)s must be from %(low)s to %(high)s; %(text)s is not.",
                                 field=_field_name(index), low=low, high=high, text=text), field="schedule")
    return value


def _check_field(text: str, index: int) -> None:
    """Check one field (*, a, a-b, with /n steps, comma-separated), saying what is wrong. Raises ValidationFailed."""
    field = _field_name(index)
    for item in text.split(","):
        if not item:
            raise ValidationFailed(_("%(field)s: an empty item in %(text)r.", field=field, text=text),
                                   field="schedule")
        base, slash, step = item.partition("/")
        if slash and (not step.isdigit() or int(step) == 0):
            raise ValidationFailed(_("%(field)s: the step in %(item)r must be a number above 0.",
                                     field=field, item=item), field="schedule")
        if base == "*":
            continue
        first, dash, last = base.partition("-")
        start = _value(first, index)
        if dash and start > _value(last, index):
            raise ValidationFailed(_("%(field)s: the range %(range)r runs backwards.", field=field, range=base),
                                   field="schedule")


def _expanded(values: list, index: int) -> set[int]:
    """croniter's expansion of one field as numbers ("*" is every value of the field)."""
    _name, low, high = _FIELDS[index]
    if values == ["*"]:
        return set(range(low, 7 if index == 4 else high + 1))
    return {int(v) % 7 if index == 4 else int(v) for v in values}


def parse_cron(expression: str) -> CronSchedule:
    """Check and expand a 5-field cron expression (minute hour day month weekday). Raises ValidationFailed."""
    text = " ".join(str(expression or "").split())
    parts = text.split(" ") if text else []
    if len(parts) != 5:
        raise ValidationFailed(_("A schedule has 5 fields: minute hour day-of-month month day-of-week, "
                                 "like 0 3 * * * (every day at 03:00)."), field="schedule")
    for index, part in enumerate(parts):
        _check_field(part, index)
    try:
        fields, _extra = croniter.expand(text)
    except ValueError as exc:  # croniter's own refusal of something the checks above let through
        raise ValidationFailed(_("The schedule %(expression)s is not valid: %(error)s", expression=text,
                                 error=str(exc)), field="schedule") from None
    values = [_expanded(field, i) for i, field in enumerate(fields)]
    return CronSchedule(expression=text, minutes=tuple(sorted(values[0])), hours=tuple(sorted(values[1])),
                        days=frozenset(values[2]), months=frozenset(values[3]), weekdays=frozenset(values[4]))


def _zone(tz: str | ZoneInfo | None) -> ZoneInfo:
    """The time zone schedules are read in (DISPLAY_TIMEZONE by default)."""
    if isinstance(tz, ZoneInfo):
        return tz
    name = tz or current_app.config["DISPLAY_TIMEZONE"]
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise ValidationFailed(_("Unknown time zone %(name)r.", name=name)) from None


def next_run(schedule: str | CronSchedule, after: datetime, tz: str | ZoneInfo | None = None) -> datetime | None:
    """The first time strictly after `after` when the schedule fires, as an aware UTC datetime.

    croniter steps through wall-clock times where the brand is; each is then placed in the time zone,
    so a wall time skipped by a DST change maps to the instant just after it. None when it never
    fires (like 0 0 30 2 *). Raises ValidationFailed for a bad expression.
    """
    cron = schedule if isinstance(schedule, CronSchedule) else parse_cron(schedule)
    zone = _zone(tz)
    if after.tzinfo is None:
        after = after.replace(tzinfo=UTC)
    start = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
    steps = croniter(cron.expression, start, max_years_between_matches=SEARCH_YEARS)
    for _attempt in range(3):  # a wall time folded back by DST can land before `after`: take the next one
        try:
            wall = steps.get_next(datetime)
        except CroniterBadDateError:
            return None
        moment = wall.replace(tzinfo=zone).astimezone(UTC)
        if moment > after:
            return moment
    return None


def describe_next_runs(schedule: str, count: int = 3, tz: str | None = None) -> list[datetime]:
    """The next few times a schedule fires from now (for the form's preview)."""
    cron = parse_cron(schedule)
    times, after = [], utcnow()
    for _count in range(count):
        upcoming = next_run(cron, after, tz)
        if upcoming is None:
            break
        times.append(upcoming)
        after = upcoming
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
    def from_form(cls, form: Mapping) -> JobInput:
        """Read a submitted form: the schedule from the builder's fields (or cron text), the parameters from
        one field each (or JSON text). Raises ValidationFailed for a builder field or parameter that is wrong."""
        job_type = str(form.get("job_type") or "")
        if job_types.has_parameter_fields(form) and job_type in job_types.JOB_TYPES:
            parameters: object = job_types.parameters_from_form(job_type, form)
        else:
            parameters = form.get("parameters", "")
        return cls(name=str(form.get("name") or "").strip(), job_type=job_type,
                   schedule=schedules.from_form(form).expression().strip(), parameters=parameters,
                   enabled=form.get("enabled") in ("on", "true", "1", True))


def validate_job(session: Session, data: JobInput, job_id: int | None = None) -> dict:
    """Check a job's fields and return them cleaned, with its next run. Raises ValidationFailed."""
    if not data.name:
        raise ValidationFailed(_("Give the job a name."), field="name")
    if len(data.name) > 120:
        raise ValidationFailed(_("The name is too long (at most 120 characters)."), field="name")
    taken = session.scalar(select(ScheduledJob.id).where(ScheduledJob.name == data.name))
    if taken is not None and taken != job_id:
        raise ValidationFailed(_("A job named %(name)r already exists.", name=data.name), field="name")
    job_types.get_type(data.job_type)
    cron = parse_cron(data.schedule)
    upcoming = next_run(cron, utcnow())
    if upcoming is None:
        raise ValidationFailed(_("The schedule %(expression)s never fires (no such date).",
                                 expression=cron.expression), field="schedule")
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
        raise NotFound(_("No such job."))
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
    session.execute(delete(JobRun).where(JobRun.job_id == job.id).execution_options(synchronize_session=False))
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


def runs_in_progress(rows: list[tuple]) -> bool:
    """True while one of these runs is still going (and not lost with a dead worker)."""
    now = utcnow()
    return any(runs.is_live(row[0]) and not runs.is_stale(row[0], now, STALE_RUN) for row in rows)


def _new_run(job_id: int, trigger: str, user_id: int | None = None, now: datetime | None = None) -> JobRun:
    """A queued run of a job with a fresh claim token (not added to the session)."""
    return JobRun(job_id=job_id, trigger=trigger, status=JobRun.QUEUED, task_id=runs.new_token(),
                  started_by_id=user_id, created_at=now or utcnow(), cursor={}, progress={}, error="")


def run_now(session: Session, job_id: int, *, user_id: int | None) -> JobRun:
    """Record a manual run and put it on the queue; returns it (finished already in immediate mode). Raises NotFound."""
    job = get_job(session, job_id)
    run = _new_run(job.id, MANUAL, user_id)
    session.add(run)
    session.commit()
    return runs.queue(session, KIND, run)


def execute_run(session: Session, run_id: int, token: str) -> JobRun | None:
    """Claim a recorded run, do its job's work and store how it ended; any failure is caught and recorded."""
    if not runs.claim(session, JobRun, run_id, token):
        return session.get(JobRun, run_id)  # deleted with its job, ended, or taken over (a task delivered twice)
    run = session.get(JobRun, run_id, populate_existing=True)
    job = session.get(ScheduledJob, run.job_id) if run is not None else None
    if run is None or job is None:  # deleted (with its job) since it was claimed
        runs.fail(session, KIND, run_id, token, _("The job was deleted before this run could start."))
        return session.get(JobRun, run_id, populate_existing=True)
    try:
        job_type = job_types.get_type(job.job_type)
        params = job_types.validate_parameters(job.job_type, job.parameters or {})
        result = str(job_type.run(session, params))
        runs.finish(session, JobRun, run_id, token, result=result[:runs.MAX_ERROR])
    except runs.Superseded:
        log.warning("scheduled job run %s was taken over; its result is dropped", run_id)
    except Exception as exc:  # a job's bug must end as a failed run, not take the worker down
        session.rollback()
        log.exception("scheduled job %s (run %s) failed", job.name if job else "?", run_id)
        runs.fail(session, KIND, run_id, token, getattr(exc, "message", None) or str(exc) or exc.__class__.__name__)
    return session.get(JobRun, run_id, populate_existing=True)


def _on_fail(session: Session, run: JobRun, message: str) -> None:
    """A failed run's result says so (the runs list shows the result)."""
    run.result = _("Failed: %(detail)s", detail=message)[:runs.MAX_ERROR]


runs.register(runs.RunKind(KIND, JobRun, step=execute_run, on_fail=_on_fail, stale_after=STALE_RUN))


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
        claimed = rowcount(session.execute(
            update(ScheduledJob)
            .where(ScheduledJob.id == job_id, ScheduledJob.next_run_at == due_at)
            .values(next_run_at=following)
            .execution_options(synchronize_session=False)
        ))
        if claimed != 1:
            session.rollback()
            continue
        run = _new_run(job_id, SCHEDULE, now=now)
        session.add(run)
        session.commit()
        run_ids.append(run.id)
    return run_ids


def run_due_jobs(session: Session, now: datetime | None = None) -> list[int]:
    """Claim the due jobs and queue a run of each; returns the run ids."""
    run_ids = claim_due_jobs(session, now)
    for run_id in run_ids:
        run = session.get(JobRun, run_id)
        if run is not None:  # else deleted with its job meanwhile
            runs.queue(session, KIND, run)
    return run_ids


def step_check(session: Session) -> tuple[bool, str]:
    """Step 15 is done when at least one enabled job exists."""
    enabled = session.scalars(select(ScheduledJob.name).where(ScheduledJob.enabled.is_(True))).all()
    if not enabled:
        return False, _("Add at least one enabled job.")
    return True, _("%(count)s enabled job(s).", count=len(enabled))


def refresh_step(session: Session, *, user_id: int | None) -> tuple[bool, str]:
    """Bring step 15 in line with the jobs as they are (not committed); returns its check.

    Every change to jobs here calls it, so the wizard's page and the API settle the step the same way.
    """
    session.flush()
    ok, note = step_check(session)
    wizard.settle(session, STEP_KEY, ok, user_id=user_id, note=note)
    return ok, note


@huey.periodic_task(crontab(minute="*"))
def run_due_jobs_task() -> None:
    """Every minute: give up the runs lost with their workers, then start the enabled jobs whose time has come."""
    with app_context():
        try:
            runs.sweep_stale(db.session, KIND)
            run_due_jobs(db.session)
        except Exception:  # a database hiccup must not stop next minute's tick
            db.session.rollback()
            log.exception("scheduled jobs tick failed")
