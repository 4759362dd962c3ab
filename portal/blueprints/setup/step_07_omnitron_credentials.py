"""Setup step 7, OMS credentials: OMNITRON_CLIENT_SETTINGS, the oms.application user."""
from __future__ import annotations

from flask import request
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared_settings import (
    EXPIRED,
    _errors,
    _omnitron_login,
    _respond,
    _saved,
)
from portal.errors import DomainError
from portal.extensions import db
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.setup.steps import BY_KEY

CREDENTIALS = ("setup/omnitron_credentials.html", "credentials_form", "omnitron_credentials")


def _credentials_context(session: Session, values: dict | None = None, errors: dict | None = None) -> dict:
    """What the credentials form shows: the stored username, the password's mask, and any errors."""
    stored = settings.public_value(settings.OMNITRON_CLIENT_SETTINGS,
                                   settings.get_value(session, settings.OMNITRON_CLIENT_SETTINGS))
    auth = stored.get("auth", {}) if isinstance(stored, dict) else {}
    if values is None:
        values = {"username": auth.get("username") or "oms.application"}
    return {"values": values, "errors": errors or {}, "stored_username": auth.get("username"),
            "password_mask": auth.get("password"), "application_step": BY_KEY["application"]}


def save_omnitron_credentials(session: Session, username: str, password: str, *, user_id: int | None) -> bool:
    """Save OMNITRON_CLIENT_SETTINGS and mark step 7 done; returns True when the login changed.

    A changed login puts a finished step 3 back to "needs attention", since it checked the old login.
    Raises ValidationFailed (nothing changed) for a missing username, or a missing first password.
    """
    before = _omnitron_login(session)
    settings.set_value(session, settings.OMNITRON_CLIENT_SETTINGS,
                       {"auth": {"username": username, "password": password}}, user_id=user_id)
    changed = _omnitron_login(session) != before
    wizard.mark(session, "omnitron_credentials", SetupStep.DONE, user_id=user_id, commit=False)
    if changed and wizard.status(session, "application").state == SetupStep.DONE:
        wizard.mark(session, "application", SetupStep.NEEDS_ATTENTION, user_id=user_id, commit=False,
                    note="The Omnitron credentials were changed: log in again in this step to check them.")
    session.commit()
    return changed


@bp.route("/omnitron-credentials", methods=["GET", "POST"])
def omnitron_credentials():
    """Step 7: the oms.application user the OMS logs in to Omnitron with (password encrypted, never shown)."""
    if request.method == "GET":
        return _respond(*CREDENTIALS, **_credentials_context(db.session))
    values = {"username": request.form.get("username", "")}
    if not FlaskForm().validate_on_submit():
        return _respond(*CREDENTIALS, http_status=400,
                        **_credentials_context(db.session, values, {"form": EXPIRED}))
    try:
        save_omnitron_credentials(db.session, values["username"], request.form.get("password", ""),
                                  user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        return _respond(*CREDENTIALS, http_status=422,
                        **_credentials_context(db.session, values, _errors(exc, ("username", "password"))))
    return _saved("setup.omnitron_credentials", *CREDENTIALS, "Omnitron credentials saved.",
                  **_credentials_context(db.session))
