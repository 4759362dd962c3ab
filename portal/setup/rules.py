"""How saving a setting settles the wizard steps that depend on it (steps 3, 7 and 8).

The rules hang on settings.after_save(), so a save from the wizard's form, the REST API or a script
settles the steps the same way. (Step 12 follows WANTED_EVENTS in portal/webhooks/coverage.py.)
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from portal import crypto
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.setup.models import SetupStep


def _login(value: object) -> tuple[object, str | None]:
    """The username and decrypted password of a stored OMNITRON_CLIENT_SETTINGS value (None where unreadable)."""
    auth = value.get("auth", {}) if isinstance(value, dict) else {}
    auth = auth if isinstance(auth, dict) else {}
    sealed = auth.get("password")
    try:
        password = crypto.decrypt(sealed[settings.ENCRYPTED]) if isinstance(sealed, dict) else None
    except (KeyError, ValueError):
        password = None
    return auth.get("username"), password


@settings.after_save(settings.OMNITRON_CLIENT_SETTINGS)
def omnitron_credentials_saved(session: Session, before: object, after: object, *, user_id: int | None) -> None:
    """Step 7 is done; a changed login puts a finished step 3 back to "needs attention" (it checked the old one)."""
    wizard.mark(session, "omnitron_credentials", SetupStep.DONE, user_id=user_id, commit=False)
    if _login(after) != _login(before) and wizard.status(session, "application").state == SetupStep.DONE:
        wizard.mark(session, "application", SetupStep.NEEDS_ATTENTION, user_id=user_id, commit=False,
                    note=_("The Omnitron credentials were changed: log in again in this step to check them."))


@settings.after_save(settings.ORDER_FILTERING)
def order_filtering_saved(session: Session, before: object, after: object, *, user_id: int | None) -> None:
    """Step 8 is done once ORDER_FILTERING is saved (the save validated it)."""
    wizard.mark(session, "order_filtering", SetupStep.DONE, user_id=user_id, commit=False)
