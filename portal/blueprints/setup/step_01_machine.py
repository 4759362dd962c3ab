"""Setup step 1, Control OMS machine: check that Omnitron can be reached, and how fast."""
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
    _respond,
)
from portal.extensions import db
from portal.omnitron import OmnitronError, OmnitronUnreachable
from portal.setup import service as wizard
from portal.setup.models import SetupStep

MACHINE = ("setup/machine.html", "machine_check", "machine")


def check_machine(session: Session, config, *, user_id: int | None) -> float:
    """Ping Omnitron's health endpoint; marks step 1 done (with the latency) or needing attention.

    Returns the latency in milliseconds; raises OmnitronError when Omnitron cannot be reached or answers badly.
    """
    url = config.get("OMNITRON_URL", "")
    try:
        with _check_client(config) as client:
            latency = client.ping()
    except OmnitronError as exc:
        hint = f" {UNREACHABLE_HINT}" if isinstance(exc, OmnitronUnreachable) else ""
        wizard.mark(session, "machine", SetupStep.NEEDS_ATTENTION, user_id=user_id, note=exc.message + hint)
        raise
    wizard.mark(session, "machine", SetupStep.DONE, user_id=user_id,
                note=_("Omnitron at %(url)s answered in %(ms)s ms.", url=url, ms=format(latency, "g")))
    return latency


@bp.get("/machine")
def machine():
    """Step 1: check that Omnitron can be reached, and how fast."""
    return _respond(*MACHINE, **_omnitron_context(db.session))


@bp.post("/machine/check")
def machine_check():
    """Ping Omnitron now; shows the latency in milliseconds, or the error."""
    try:
        latency = check_machine(db.session, current_app.config, user_id=current_user.id)
    except OmnitronError as exc:
        return _respond(*MACHINE, **_omnitron_context(db.session, error=exc.message, error_kind=exc.code,
                                                     problem=explain.omnitron(exc)))
    return _respond(*MACHINE, **_omnitron_context(db.session, latency=latency))
