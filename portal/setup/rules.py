"""How saving a setting settles the wizard steps that depend on it (steps 3, 7, 8 and 9).

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


def _secret(sealed: object) -> str | None:
    """A sealed secret of a stored setting, decrypted (None when missing or unreadable)."""
    try:
        return crypto.decrypt(sealed[settings.ENCRYPTED]) if isinstance(sealed, dict) else None
    except (KeyError, ValueError):
        return None


def _login(value: object) -> tuple[object, str | None]:
    """The username and decrypted password of a stored OMNITRON_CLIENT_SETTINGS value (None where unreadable)."""
    auth = value.get("auth", {}) if isinstance(value, dict) else {}
    auth = auth if isinstance(auth, dict) else {}
    return auth.get("username"), _secret(auth.get("password"))


def _geocoding(value: object) -> tuple[object, str | None]:
    """The provider and decrypted key of a stored GEOLOCATION_DISCOVERY value."""
    value = value if isinstance(value, dict) else {}
    return value.get("provider"), _secret(value.get("api_key"))


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


@settings.after_save(settings.GEOLOCATION_DISCOVERY)
def geolocation_saved(session: Session, before: object, after: object, *, user_id: int | None) -> None:
    """A new provider or key is not tested yet: step 9 is in progress until the key test passes."""
    state = wizard.status(session, "geolocation").state
    if _geocoding(after) != _geocoding(before) or state in (SetupStep.NOT_STARTED, SetupStep.SKIPPED):
        wizard.mark(session, "geolocation", SetupStep.IN_PROGRESS, user_id=user_id, commit=False,
                    note=_("Saved; the key is not tested yet."))


def settle_saved_settings(session: Session) -> bool:
    """Mark done the settings steps whose setting is saved but whose step was never settled; True if any changed.

    A setting saved before these rules existed (a demo database seeded by an older version, whose seed
    found the login already stored and left it alone) or written straight into the table left step 7
    "Not started" although its login is saved. A saved, readable setting is the truth: steps 7 and 8 are
    done. Only steps with no state yet are touched; a step someone skipped or that needs attention keeps its
    state. Not committed.
    """
    changed = False
    login = settings.get_value(session, settings.OMNITRON_CLIENT_SETTINGS)
    username, password = _login(login)
    if username and password and wizard.status(session, "omnitron_credentials").state == SetupStep.NOT_STARTED:
        wizard.mark(session, "omnitron_credentials", SetupStep.DONE, user_id=None, commit=False)
        changed = True
    filtering = settings.get_value(session, settings.ORDER_FILTERING)
    if isinstance(filtering, dict) and wizard.status(session, "order_filtering").state == SetupStep.NOT_STARTED:
        wizard.mark(session, "order_filtering", SetupStep.DONE, user_id=None, commit=False)
        changed = True
    return changed
