"""Setup step 2, Create users: admins, brand managers and store staff with their stores."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.accounts import management
from portal.blueprints.setup import bp
from portal.blueprints.setup.shared import step_page
from portal.blueprints.setup.shared_editors import (
    _done,
    _error_context,
    _fragments,
    _not_found,
    _page,
)
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.web import is_fragment_request

USERS = "users"


def _users_context(**extra) -> dict:
    """What the users page and its fragments show."""
    ok, note = management.step_check(db.session)
    context = dict(users=management.list_users(db.session), stores=management.list_stores(db.session),
                   roles=management.ROLE_CHOICES, check_ok=ok, check_note=note, is_locked=management.is_locked,
                   locked_until=management.locked_until, failed_logins=management.failed_logins,
                   error=None, error_field=None, values={}, editing=None, panel_error=None, oob=False)
    context.update(extra)
    return context


def _user_changed(message: str):
    """After a change from the edit dialog or a row button: the refreshed table, the step chip, a toast."""
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
    message = _("User %(name)s created.", name=user.username)
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
    return _user_changed(_("%(name)s saved.", name=user.username))


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
    return _user_changed(_("%(name)s activated.", name=user.username) if active
                         else _("%(name)s deactivated.", name=user.username))


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
    return _user_changed(_("New password set for %(name)s.", name=user.username))


@bp.post("/users/check")
def check_users():
    """Record the step's state from the users as they are."""
    ok, note = management.refresh_step(db.session, user_id=current_user.id)
    db.session.commit()
    if not is_fragment_request():
        flash(note, "success" if ok else "error")
        return redirect(url_for("setup.users"))
    return _fragments("setup/users.html", USERS, ["user_panel", "step_state_oob"],
                      toast=(note, "success" if ok else "error"), **_users_context())
