"""Setup step 15, Brand-specific jobs: scheduled jobs with parameters; run now; last runs."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared import step_page
from portal.blueprints.setup.shared_editors import (
    _as_json,
    _done,
    _error_context,
    _fragments,
    _not_found,
    _page,
)
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.jobs import job_types, scheduler, schedules
from portal.runs.service import is_live
from portal.web import is_fragment_request

JOBS = "jobs"


def _param_text(job) -> list[tuple[str, str]]:
    """A job's parameters in words: (label, value) pairs, a switch as On/Off."""
    job_type = job_types.JOB_TYPES.get(job.job_type)
    if job_type is None:
        return [(name, str(value)) for name, value in (job.parameters or {}).items()]
    stored = job.parameters or {}
    return [(_(p.label) if p.label else p.name,
             (_("On") if stored.get(p.name, p.default) else _("Off")) if p.type == job_types.SWITCH
             else str(stored.get(p.name, p.default))) for p in job_type.params]


def schedule_fields(values, job) -> dict[str, str]:
    """The schedule builder's field values as text: as posted (a refused form), else read from the job's cron."""
    if values:
        return {"kind": values.get("schedule_kind") or schedules.CRON, "every": values.get("schedule_every", ""),
                "minute": values.get("schedule_minute", ""), "time": values.get("schedule_time", ""),
                "weekday": values.get("schedule_weekday", ""), "cron": values.get("schedule", "")}
    sch = schedules.read(job.schedule) if job else schedules.Schedule()
    return {"kind": sch.kind, "every": str(sch.every), "minute": str(sch.minute), "time": sch.time,
            "weekday": str(sch.weekday), "cron": job.schedule if job else sch.expression()}


def builder_preview(fields: dict[str, str]) -> tuple[str | None, list]:
    """The schedule the builder's fields show, in words, and its next runs; (None, []) when it is not valid."""
    try:
        built = schedules.from_form({"schedule_kind": fields["kind"], "schedule_every": fields["every"],
                                     "schedule_minute": fields["minute"], "schedule_time": fields["time"],
                                     "schedule_weekday": fields["weekday"], "schedule": fields["cron"]})
        return schedules.read(built.expression()).describe(), scheduler.describe_next_runs(built.expression())
    except DomainError:
        return None, []


def param_fields(job_type, values, job) -> dict[str, object]:
    """Each parameter field's value (param_<name>): as posted, else the job's stored value, else the default."""
    if job_type is None:
        return {}
    if values:
        return {p.field: values.get(p.field) for p in job_type.params}
    stored = job.parameters if job is not None and job.job_type == job_type.key and job.parameters else {}
    return {p.field: stored.get(p.name, p.default) for p in job_type.params}


def default_type(jobs: list) -> str:
    """The job type the new-job form starts with: the first in the list that has no job yet ("" when all have)."""
    used = {job.job_type for job in jobs}
    return next((key for key in job_types.JOB_TYPES if key not in used), "")


def _named_after_type(form):
    """The posted new-job form, its empty name replaced by the chosen type's name (in the admin's language)."""
    job_type = job_types.JOB_TYPES.get(str(form.get("job_type") or ""))
    if (form.get("name") or "").strip() or job_type is None:
        return form
    named = form.copy()
    named["name"] = _(job_type.label)
    return named


def _jobs_context(**extra) -> dict:
    """What the jobs page and its fragments show."""
    runs = scheduler.recent_runs(db.session)
    jobs = scheduler.list_jobs(db.session)
    ok, note = scheduler.step_check(db.session)
    context = dict(check_ok=ok, check_note=note, jobs=jobs, runs=runs, default_type=default_type(jobs),
                   polling=scheduler.runs_in_progress(runs),
                   job_types=job_types.JOB_TYPES, type_choices=job_types.CHOICES, error=None, error_field=None,
                   values={}, editing=None, oob=False, runs_oob=False, preview=None, problem=None, described=None,
                   as_json=_as_json, schedule_fields=schedule_fields, param_fields=param_fields,
                   builder_preview=builder_preview,
                   schedule_kinds=schedules.KINDS, weekdays=schedules.WEEKDAYS, read_schedule=schedules.read,
                   param_text=_param_text)
    context.update(extra)
    return context


def _jobs_changed(message: str):
    """After a saved change: the refreshed jobs table, the step chip, a toast."""
    if not is_fragment_request():
        return _done(message, "setup.jobs")
    return _fragments("setup/jobs.html", JOBS, ["job_panel", "job_runs", "step_state_oob"],
                      toast=(message, "success"), close_modal=True, **_jobs_context(runs_oob=True))


@bp.route("/jobs", methods=["GET", "POST"])
def jobs():
    """Step 15: scheduled jobs with their next run and last runs, and (POST) adding one."""
    if request.method == "GET":
        return step_page("setup/jobs.html", JOBS, **_jobs_context())
    try:
        job = scheduler.create_job(db.session, scheduler.JobInput.from_form(_named_after_type(request.form)),
                                   user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        context = _jobs_context(values=request.form, **_error_context(exc))
        if is_fragment_request():
            return _fragments("setup/jobs.html", JOBS, ["job_create"], code=422, **context)
        return _page("setup/jobs.html", JOBS, code=422, **context)
    message = _("Job %(name)s saved.", name=job.name)
    if not is_fragment_request():
        return _done(message, "setup.jobs")
    return _fragments("setup/jobs.html", JOBS, ["job_create", "job_panel", "step_state_oob"],
                      toast=(message, "success"),
                      **_jobs_context())


@bp.get("/jobs/parameters")
def job_parameters():
    """The chosen job type's parameter fields with their defaults (swapped in when the type changes)."""
    job_type = job_types.JOB_TYPES.get(request.args.get("job_type", ""))
    prefix = "edit" if request.args.get("prefix") == "edit" else "new"
    return _fragments("setup/jobs.html", JOBS, ["job_params"], **_jobs_context(
        job_type=job_type, prefix=prefix, param_values=param_fields(job_type, None, None), field_errors={}))


@bp.get("/jobs/schedule-preview")
def schedule_preview():
    """The builder's schedule in words and its next runs, or what is wrong with it (as the admin chooses)."""
    prefix = "edit" if request.args.get("prefix") == "edit" else "new"
    described = None
    try:
        built = schedules.from_form(request.args)
        preview, problem = scheduler.describe_next_runs(built.expression()), None
        described = schedules.read(built.expression()).describe()
    except DomainError as exc:
        preview, problem = None, exc.message
    return _fragments("setup/jobs.html", JOBS, ["job_schedule_preview"],
                      **_jobs_context(preview=preview, problem=problem, prefix=prefix, described=described))


@bp.get("/jobs/<int:job_id>/edit")
def edit_job(job_id: int):
    """The edit dialog of one job."""
    try:
        job = scheduler.get_job(db.session, job_id)
    except NotFound:
        return _not_found()
    context = _jobs_context(editing=job)
    if is_fragment_request():
        return _fragments("setup/jobs.html", JOBS, ["job_edit"], **context)
    return step_page("setup/jobs.html", JOBS, **context)


@bp.post("/jobs/<int:job_id>")
def update_job(job_id: int):
    """Save changes to a job."""
    try:
        job = scheduler.update_job(db.session, job_id, scheduler.JobInput.from_form(request.form),
                                   user_id=current_user.id)
    except NotFound:
        return _not_found()
    except DomainError as exc:
        db.session.rollback()
        context = _jobs_context(editing=scheduler.get_job(db.session, job_id), values=request.form,
                                **_error_context(exc))
        if is_fragment_request():
            return _fragments("setup/jobs.html", JOBS, ["job_edit"], code=422, **context)
        return _page("setup/jobs.html", JOBS, code=422, **context)
    return _jobs_changed(_("Job %(name)s saved.", name=job.name))


@bp.post("/jobs/<int:job_id>/delete")
def delete_job(job_id: int):
    """Delete a job and its runs."""
    try:
        name = scheduler.delete_job(db.session, job_id, user_id=current_user.id)
    except NotFound:
        return _not_found()
    return _jobs_changed(_("Job %(name)s deleted.", name=name))


@bp.post("/jobs/<int:job_id>/run")
def run_job(job_id: int):
    """Run a job now on the queue; the runs list polls until the run has finished."""
    try:
        run = scheduler.run_now(db.session, job_id, user_id=current_user.id)
    except NotFound:
        return _not_found()
    job = scheduler.get_job(db.session, job_id)
    if is_live(run):
        message = _("%(job)s started.", job=job.name)
    elif run.status == run.DONE:
        message = _("%(job)s: %(result)s", job=job.name, result=run.result)
    else:
        message = _("%(job)s failed: %(error)s", job=job.name, error=run.error)
    level = "error" if run.status == run.FAILED else "success"
    if not is_fragment_request():
        flash(message, level)
        return redirect(url_for("setup.jobs"))
    return _fragments("setup/jobs.html", JOBS, ["job_runs"], toast=(message, level), **_jobs_context())


@bp.get("/jobs/runs")
def job_runs():
    """The last runs (polled by the page while one is in progress)."""
    return _fragments("setup/jobs.html", JOBS, ["job_runs"], **_jobs_context())


@bp.post("/jobs/check")
def check_jobs():
    """Record the step's state from the jobs as they are."""
    ok, note = scheduler.refresh_step(db.session, user_id=current_user.id)
    db.session.commit()
    if not is_fragment_request():
        flash(note, "success" if ok else "error")
        return redirect(url_for("setup.jobs"))
    return _fragments("setup/jobs.html", JOBS, ["job_panel", "step_state_oob"],
                      toast=(note, "success" if ok else "error"), **_jobs_context())
