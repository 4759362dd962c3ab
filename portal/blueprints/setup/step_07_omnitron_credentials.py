"""Setup step 7, OMS credentials: OMNITRON_CLIENT_SETTINGS, the oms.application user."""
from __future__ import annotations

from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared_settings import (
    _errors,
    _respond,
    _saved,
)
from portal.errors import DomainError
from portal.extensions import db
from portal.settings import service as settings
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


@bp.route("/omnitron-credentials", methods=["GET", "POST"])
def omnitron_credentials():
    """Step 7: the oms.application user the OMS logs in to Omnitron with (password encrypted, never shown)."""
    if request.method == "GET":
        return _respond(*CREDENTIALS, **_credentials_context(db.session))
    values = {"username": request.form.get("username", "")}
    try:
        # Saving settles steps 7 and 3 (portal/setup/rules.py); an empty password keeps the stored one.
        settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                           {"auth": {"username": values["username"], "password": request.form.get("password", "")}},
                           user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        return _respond(*CREDENTIALS, http_status=422,
                        **_credentials_context(db.session, values, _errors(exc, ("username", "password"))))
    return _saved("setup.omnitron_credentials", *CREDENTIALS, _("Omnitron credentials saved."),
                  **_credentials_context(db.session))
