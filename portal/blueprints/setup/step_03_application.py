"""Setup step 3, Control OMS application: log in to Omnitron with the stored credentials."""
from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session

from portal import explain
from portal.blueprints.setup import bp
from portal.blueprints.setup.shared_settings import (
    UNREACHABLE_HINT,
    _check_client,
    _omnitron_context,
    _omnitron_login,
    _respond,
)
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db
from portal.omnitron import LoginResult, OmnitronError, OmnitronUnreachable
from portal.setup import service as wizard
from portal.setup.models import SetupStep

APPLICATION = ("setup/application.html", "application_check", "application")


def check_application(session: Session, config, *, user_id: int | None) -> LoginResult:
    """Log in to Omnitron with the stored OMNITRON_CLIENT_SETTINGS; marks step 3 done or needing attention.

    Raises ValidationFailed when no credentials are saved (nothing is marked), OmnitronError when the login fails.
    """
    username, password = _omnitron_login(session)
    if not username or not password:
        raise ValidationFailed(_("Save the Omnitron username and password in step 7 first."), field="credentials")
    try:
        with _check_client(config, username, password) as client:
            result = client.check_login()
    except OmnitronError as exc:
        hint = f" {UNREACHABLE_HINT}" if isinstance(exc, OmnitronUnreachable) else ""
        wizard.mark(session, "application", SetupStep.NEEDS_ATTENTION, user_id=user_id, note=exc.message + hint)
        raise
    wizard.mark(session, "application", SetupStep.DONE, user_id=user_id,
                note=_("Logged in to %(url)s as %(user)s in %(ms)s ms.", url=config.get("OMNITRON_URL", ""),
                          user=result.username, ms=format(result.latency_ms, "g")))
    return result


@bp.get("/application")
def application():
    """Step 3: log in to Omnitron with the stored credentials and show the result."""
    return _respond(*APPLICATION, **_omnitron_context(db.session))


@bp.post("/application/check")
def application_check():
    """Log in to Omnitron now with OMNITRON_CLIENT_SETTINGS; shows who logged in, or why it failed."""
    try:
        login = check_application(db.session, current_app.config, user_id=current_user.id)
    except OmnitronError as exc:
        return _respond(*APPLICATION, **_omnitron_context(db.session, error=exc.message, error_kind=exc.code,
                                                     problem=explain.omnitron(exc)))
    except DomainError as exc:
        db.session.rollback()
        return _respond(*APPLICATION, http_status=422,
                        **_omnitron_context(db.session, error=exc.message, error_kind=exc.code))
    return _respond(*APPLICATION, **_omnitron_context(db.session, login=login))
