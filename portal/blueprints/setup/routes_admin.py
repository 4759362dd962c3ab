"""Setup steps 2 (users), 13 (package commands) and 15 (brand-specific jobs).

Each route parses the form, calls one domain function and answers with the page, or for htmx with
the changed fragments (the step's state chip swapped out of band) and a toast. Bad input answers
422 with the form and its message; nothing was changed.
"""
from __future__ import annotations

import json

from flask import abort, flash, make_response, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.accounts import management
from portal.blueprints.setup import bp
from portal.blueprints.setup.routes import step_page, step_url
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.jobs import job_types, scheduler
from portal.packages import commands, flow_editor
from portal.packages.states import STATES, Visibility
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.web import is_fragment_request, render_block, with_toast

USERS, COMMANDS, JOBS = "users", "package_commands", "jobs"


def _as_json(value) -> str:
    """A JSON value as the text an admin edits in a textarea."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def _refresh_step(key: str, check) -> None:
    """Record the step as done when its check passes; say what is missing when it does not."""
    ok, note = check(db.session)
    state = wizard.status(db.session, key).state
    if ok:
        if state != SetupStep.DONE:
            wizard.mark(db.session, key, SetupStep.DONE, user_id=current_user.id, note=note)
    elif state == SetupStep.DONE:
        wizard.mark(db.session, key, SetupStep.NEEDS_ATTENTION, user_id=current_user.id, note=note)
    elif state != SetupStep.SKIPPED:
        wizard.mark(db.session, key, SetupStep.IN_PROGRESS, user_id=current_user.id, note=note)


def _fragments(template: str, key: str, blocks: list[str], *, code: int = 200,
               toast: tuple[str, str] | None = None, close_modal: bool = False, **context):
    """Several blocks of a step page as one htmx answer (the ones marked oob swap themselves into place)."""
    # In an htmx answer the panels always swap themselves into place (out of band).
    context.update(status=wizard.status(db.session, key), step_url=step_url, form=FlaskForm(), oob=True)
    body = "".join(render_block(template, name, **context) for name in blocks)
    response = make_response(body, code)
    response.vary.add("HX-Request")
    if toast:
        with_toast(response, *toast)
    if close_modal:
        events = json.loads(response.headers.get("HX-Trigger", "{}"))
        events["close-modal"] = True
        response.headers["HX-Trigger"] = json.dumps(events)
    return response


def _error_context(exc: DomainError) -> dict:
    """The message and the field it concerns, for the form."""
    return {"error": exc.message, "error_field": exc.field}


def _page(template: str, key: str, code: int = 200, **context):
    """A step page with a status code (422 when it shows a refused form)."""
    return make_response(step_page(template, key, **context), code)


def _done(message: str, endpoint: str):
    """Without htmx: flash the outcome and go back to the step page."""
    flash(message, "success")
    return redirect(url_for(endpoint))


# --- Step 2: users ------------------------------------------------------------------------------------------

def _users_context(**extra) -> dict:
    """What the users page and its fragments show."""
    ok, note = management.step_check(db.session)
    context = dict(users=management.list_users(db.session), stores=management.list_stores(db.session),
                   roles=management.ROLE_CHOICES, check_ok=ok, check_note=note, is_locked=management.is_locked,
                   error=None, error_field=None, values={}, editing=None, panel_error=None, oob=False)
    context.update(extra)
    return context


def _user_changed(message: str):
    """After a change from the edit dialog or a row button: the refreshed table, the step chip, a toast."""
    _refresh_step(USERS, management.step_check)
    if not is_fragment_request():
        return _done(message, "setup.users")
    return _fragments("setup/users.html", USERS, ["user_panel", "step_state_oob"], toast=(message, "success"),
                      close_modal=True, **_users_context())


def _user_refused(exc: DomainError, user_id: int):
    """A refused change from the edit dialog: the dialog again with the message, nothing changed."""
    db.session.rollback()
    user = management.get_user(db.session, user_id)
    context = _users_context(editing=user, values=request.form, **_error_context(exc))
    if is_fragment_request():
        return _fragments("setup/users.html", USERS, ["user_edit"], code=422, **context)
    return _page("setup/users.html", USERS, code=422, **context)


@bp.route("/users", methods=["GET", "POST"])
def users():
    """Step 2: every user, and (POST) adding one."""
    if request.method == "GET":
        return step_page("setup/users.html", USERS, **_users_context())
    try:
        user = management.create_user(db.session, management.UserInput.from_form(request.form),
                                      actor_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        context = _users_context(values=request.form, **_error_context(exc))
        if is_fragment_request():
            return _fragments("setup/users.html", USERS, ["user_create"], code=422, **context)
        return _page("setup/users.html", USERS, code=422, **context)
    _refresh_step(USERS, management.step_check)
    message = f"User {user.username} created."
    if not is_fragment_request():
        return _done(message, "setup.users")
    return _fragments("setup/users.html", USERS, ["user_create", "user_panel", "step_state_oob"],
                      toast=(message, "success"), **_users_context())


@bp.get("/users/<int:user_id>/edit")
def edit_user(user_id: int):
    """The edit dialog of one user: name, role, stores, active, password."""
    try:
        user = management.get_user(db.session, user_id)
    except NotFound:
        return _not_found()
    context = _users_context(editing=user)
    if is_fragment_request():
        return _fragments("setup/users.html", USERS, ["user_edit"], **context)
    return step_page("setup/users.html", USERS, **context)


@bp.post("/users/<int:user_id>")
def update_user(user_id: int):
    """Save a user's name, role and stores."""
    try:
        user = management.update_user(db.session, user_id, management.UserInput.from_form(request.form),
                                      actor_id=current_user.id)
    except NotFound:
        return _not_found()
    except DomainError as exc:
        return _user_refused(exc, user_id)
    return _user_changed(f"{user.username} saved.")


@bp.post("/users/<int:user_id>/active")
def set_user_active(user_id: int):
    """Activate or deactivate a user (from the table or the dialog)."""
    active = request.form.get("active") == "true"
    try:
        user = management.set_active(db.session, user_id, active, actor_id=current_user.id)
    except NotFound:
        return _not_found()
    except DomainError as exc:
        db.session.rollback()
        if request.form.get("from") == "dialog":
            return _user_refused(exc, user_id)
        if is_fragment_request():
            return _fragments("setup/users.html", USERS, ["user_panel"], code=422, toast=(exc.message, "error"),
                              **_users_context(panel_error=exc.message))
        flash(exc.message, "error")
        return redirect(url_for("setup.users"))
    return _user_changed(f"{user.username} {'activated' if active else 'deactivated'}.")


@bp.post("/users/<int:user_id>/password")
def reset_password(user_id: int):
    """Set a new password for a user; any login lock is lifted."""
    try:
        user = management.reset_password(db.session, user_id, request.form.get("password", ""),
                                         actor_id=current_user.id)
    except NotFound:
        return _not_found()
    except DomainError as exc:
        return _user_refused(exc, user_id)
    return _user_changed(f"New password set for {user.username}.")


@bp.post("/users/check")
def check_users():
    """Record the step's state from the users as they are."""
    _refresh_step(USERS, management.step_check)
    ok, note = management.step_check(db.session)
    if not is_fragment_request():
        flash(note, "success" if ok else "error")
        return redirect(url_for("setup.users"))
    return _fragments("setup/users.html", USERS, ["user_panel", "step_state_oob"],
                      toast=(note, "success" if ok else "error"), **_users_context())


def _not_found():
    """404 for a user, command or job that is not there (any more)."""
    abort(404)


# --- Step 13: package commands ------------------------------------------------------------------------------

def _commands_context(**extra) -> dict:
    """What the package commands page and its fragments show."""
    transitions = flow_editor.list_transitions(db.session)
    flow = flow_editor.flow_status(db.session)
    codes = commands.command_codes()
    context = dict(transitions=transitions, flow=flow, states=list(STATES.values()),
                   codes=[(c, commands.HANDLERS[c].description) for c in codes],
                   visibilities=list(Visibility.ALL), visibility_labels=Visibility.LABELS,
                   flowchart=flow_editor.flowchart_svg(transitions, flow.counts),
                   error=None, error_field=None, values={}, editing=None, panel_error=None, oob=False,
                   as_json=_as_json)
    context.update(extra)
    return context


def _flow_changed(message: str):
    """After a saved change: the refreshed flow (chart and table), the step chip, a toast."""
    _refresh_step(COMMANDS, _commands_check)
    if not is_fragment_request():
        return _done(message, "setup.package_commands")
    return _fragments("setup/package_commands.html", COMMANDS, ["flow_panel", "step_state_oob"],
                      toast=(message, "success"), close_modal=True, **_commands_context())


def _commands_check(session) -> tuple[bool, str]:
    """Step 13 is done when the flow validates and has at least one active command."""
    flow = flow_editor.flow_status(session)
    return flow.ok, flow.message


@bp.route("/package-commands", methods=["GET", "POST"])
def package_commands():
    """Step 13: the transitions editor and the flowchart, and (POST) adding a command."""
    if request.method == "GET":
        return step_page("setup/package_commands.html", COMMANDS, **_commands_context())
    try:
        transition = flow_editor.create_transition(db.session, flow_editor.form_data(request.form),
                                                   user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        context = _commands_context(values=request.form, **_error_context(exc))
        if is_fragment_request():
            return _fragments("setup/package_commands.html", COMMANDS, ["transition_create"], code=422, **context)
        return _page("setup/package_commands.html", COMMANDS, code=422, **context)
    _refresh_step(COMMANDS, _commands_check)
    message = f"Command {transition.name} ({transition.slug}) added."
    if not is_fragment_request():
        return _done(message, "setup.package_commands")
    return _fragments("setup/package_commands.html", COMMANDS, ["transition_create", "flow_panel", "step_state_oob"],
                      toast=(message, "success"), **_commands_context())


@bp.get("/package-commands/<int:transition_id>/edit")
def edit_transition(transition_id: int):
    """The edit dialog of one command."""
    try:
        transition = flow_editor.get_transition(db.session, transition_id)
    except NotFound:
        return _not_found()
    context = _commands_context(editing=transition)
    if is_fragment_request():
        return _fragments("setup/package_commands.html", COMMANDS, ["transition_edit"], **context)
    return step_page("setup/package_commands.html", COMMANDS, **context)


@bp.post("/package-commands/<int:transition_id>")
def update_transition(transition_id: int):
    """Save changes to a command; refused when invalid or when it would strand packages."""
    try:
        transition = flow_editor.update_transition(db.session, transition_id, flow_editor.form_data(request.form),
                                                   user_id=current_user.id)
    except NotFound:
        return _not_found()
    except DomainError as exc:
        db.session.rollback()
        context = _commands_context(editing=flow_editor.get_transition(db.session, transition_id),
                                    values=request.form, **_error_context(exc))
        if is_fragment_request():
            return _fragments("setup/package_commands.html", COMMANDS, ["transition_edit"], code=422, **context)
        return _page("setup/package_commands.html", COMMANDS, code=422, **context)
    return _flow_changed(f"Command {transition.name} ({transition.slug}) saved.")


@bp.post("/package-commands/<int:transition_id>/active")
def set_transition_active(transition_id: int):
    """Switch a command on or off; switching off the only way out of a state is refused."""
    active = request.form.get("active") == "true"
    try:
        transition = flow_editor.set_active(db.session, transition_id, active, user_id=current_user.id)
    except NotFound:
        return _not_found()
    except DomainError as exc:
        db.session.rollback()
        if is_fragment_request():
            return _fragments("setup/package_commands.html", COMMANDS, ["flow_panel"], code=422,
                              toast=(exc.message, "error"), **_commands_context(panel_error=exc.message))
        flash(exc.message, "error")
        return redirect(url_for("setup.package_commands"))
    return _flow_changed(f"Command {transition.slug} {'switched on' if active else 'switched off'}.")


@bp.post("/package-commands/check")
def check_flow():
    """Check the flow as it is and record the step's state."""
    _refresh_step(COMMANDS, _commands_check)
    flow = flow_editor.flow_status(db.session)
    level = "success" if flow.ok else "error"
    if not is_fragment_request():
        flash(flow.message, level)
        return redirect(url_for("setup.package_commands"))
    return _fragments("setup/package_commands.html", COMMANDS, ["flow_panel", "step_state_oob"],
                      toast=(flow.message, level),
                      **_commands_context())


# --- Step 15: brand-specific jobs ---------------------------------------------------------------------------

def _jobs_context(**extra) -> dict:
    """What the jobs page and its fragments show."""
    runs = scheduler.recent_runs(db.session)
    ok, note = scheduler.step_check(db.session)
    context = dict(check_ok=ok, check_note=note, jobs=scheduler.list_jobs(db.session), runs=runs,
                   polling=scheduler.runs_in_progress(runs),
                   job_types=job_types.JOB_TYPES, type_choices=job_types.CHOICES, error=None, error_field=None,
                   values={}, editing=None, oob=False, runs_oob=False, preview=None, problem=None,
                   as_json=_as_json)
    context.update(extra)
    return context


def _jobs_changed(message: str):
    """After a saved change: the refreshed jobs table, the step chip, a toast."""
    _refresh_step(JOBS, scheduler.step_check)
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
        job = scheduler.create_job(db.session, scheduler.JobInput.from_form(request.form),
                                   user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        context = _jobs_context(values=request.form, **_error_context(exc))
        if is_fragment_request():
            return _fragments("setup/jobs.html", JOBS, ["job_create"], code=422, **context)
        return _page("setup/jobs.html", JOBS, code=422, **context)
    _refresh_step(JOBS, scheduler.step_check)
    message = f"Job {job.name} saved."
    if not is_fragment_request():
        return _done(message, "setup.jobs")
    return _fragments("setup/jobs.html", JOBS, ["job_create", "job_panel", "step_state_oob"],
                      toast=(message, "success"),
                      **_jobs_context())


@bp.get("/jobs/parameters")
def job_parameters():
    """The parameter help and default parameters of the chosen job type (swapped in when the type changes)."""
    key = request.args.get("job_type", "")
    prefix = "edit" if request.args.get("prefix") == "edit" else "new"
    return _fragments("setup/jobs.html", JOBS, ["job_params"], **_jobs_context(
        job_type=job_types.JOB_TYPES.get(key), prefix=prefix,
        parameters_text=json.dumps(job_types.default_parameters(key)) if key in job_types.JOB_TYPES else "{}"))


@bp.get("/jobs/schedule-preview")
def schedule_preview():
    """The next times a schedule fires, or what is wrong with it (checked as the admin types)."""
    prefix = "edit" if request.args.get("prefix") == "edit" else "new"
    try:
        preview, problem = scheduler.describe_next_runs(request.args.get("schedule", "")), None
    except DomainError as exc:
        preview, problem = None, exc.message
    return _fragments("setup/jobs.html", JOBS, ["job_schedule_preview"],
                      **_jobs_context(preview=preview, problem=problem, prefix=prefix))


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
    return _jobs_changed(f"Job {job.name} saved.")


@bp.post("/jobs/<int:job_id>/delete")
def delete_job(job_id: int):
    """Delete a job and its runs."""
    try:
        name = scheduler.delete_job(db.session, job_id, user_id=current_user.id)
    except NotFound:
        return _not_found()
    return _jobs_changed(f"Job {name} deleted.")


@bp.post("/jobs/<int:job_id>/run")
def run_job(job_id: int):
    """Run a job now on the queue; the runs list polls until the run has finished."""
    try:
        run = scheduler.run_now(db.session, job_id, user_id=current_user.id)
    except NotFound:
        return _not_found()
    job = scheduler.get_job(db.session, job_id)
    message = (f"{job.name} started." if run.status == scheduler.RUNNING
               else f"{job.name}: {run.result}" if run.status == scheduler.SUCCEEDED
               else f"{job.name} failed: {run.result}")
    level = "error" if run.status == scheduler.FAILED else "success"
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
    _refresh_step(JOBS, scheduler.step_check)
    ok, note = scheduler.step_check(db.session)
    if not is_fragment_request():
        flash(note, "success" if ok else "error")
        return redirect(url_for("setup.jobs"))
    return _fragments("setup/jobs.html", JOBS, ["job_panel", "step_state_oob"],
                      toast=(note, "success" if ok else "error"), **_jobs_context())
