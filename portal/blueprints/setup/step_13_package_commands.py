"""Setup step 13, Package commands: the package state flow, commands between states."""
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
from portal.errors import DomainError, NotFound, ValidationFailed
from portal.extensions import db
from portal.packages import commands, dry_run, flow_editor, flowchart
from portal.packages.models import Package
from portal.packages.states import STATES, Visibility, parse_state, state_info
from portal.web import answer, is_fragment_request

COMMANDS = "package_commands"


def _commands_context(**extra) -> dict:
    """What the package commands page and its fragments show."""
    transitions = flow_editor.list_transitions(db.session)
    flow = flow_editor.flow_status(db.session)
    codes = commands.command_codes()
    context = dict(transitions=transitions, flow=flow, states=list(STATES.values()),
                   codes=[(c, commands.HANDLERS[c].description) for c in codes],
                   visibilities=list(Visibility.ALL), visibility_labels=Visibility.LABELS,
                   chart=flowchart.build(transitions, flow.counts),
                   error=None, error_field=None, values={}, editing=None, panel_error=None, oob=False,
                   as_json=_as_json)
    context.update(extra)
    return context


def _flow_changed(message: str):
    """After a saved change: the refreshed flow (chart and table), the step chip, a toast."""
    if not is_fragment_request():
        return _done(message, "setup.package_commands")
    return _fragments("setup/package_commands.html", COMMANDS, ["flow_panel", "step_state_oob"],
                      toast=(message, "success"), close_modal=True, **_commands_context())


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
    message = _("Command %(name)s (%(slug)s) added.", name=transition.name, slug=transition.slug)
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
    return _flow_changed(_("Command %(name)s (%(slug)s) saved.", name=transition.name, slug=transition.slug))


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
    return _flow_changed(_("Command %(slug)s switched on.", slug=transition.slug) if active
                         else _("Command %(slug)s switched off.", slug=transition.slug))


@bp.post("/package-commands/check")
def check_flow():
    """Check the flow as it is and record the step's state."""
    flow_editor.refresh_step(db.session, user_id=current_user.id)
    db.session.commit()
    flow = flow_editor.flow_status(db.session)
    level = "success" if flow.ok else "error"
    if not is_fragment_request():
        flash(flow.message, level)
        return redirect(url_for("setup.package_commands"))
    return _fragments("setup/package_commands.html", COMMANDS, ["flow_panel", "step_state_oob"],
                      toast=(flow.message, level),
                      **_commands_context())


@bp.post("/package-commands/preview", defaults={"transition_id": None})
@bp.post("/package-commands/<int:transition_id>/preview")
def preview_transition(transition_id: int | None):
    """Dry-run the command as the form has it (saved or not) on the newest package in its source state."""
    try:
        result = dry_run.preview_edited_command(db.session, flow_editor.form_data(request.form),
                                                transition_id=transition_id, user_id=current_user.id,
                                                store_ids=None)
    except ValidationFailed as exc:
        return answer("setup/transition_preview.html", "preview_result", code=422, form_error=exc.message,
                      result=None, sample=None, preview=None, preview_error=None)
    sample = db.session.get(Package, result.sample_id) if result.sample_id is not None else None
    return answer("setup/transition_preview.html", "preview_result", form_error=None, result=result,
                  sample=sample, preview=result.preview, preview_error=result.refused,
                  source_label=_(state_info(parse_state(request.form.get("source_state"))).label))
