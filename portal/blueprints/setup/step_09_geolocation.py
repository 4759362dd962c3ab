"""Setup step 9, Geolocation discovery: GEOLOCATION_DISCOVERY, a Google or Yandex Maps key, and a key test."""
from __future__ import annotations

from flask import current_app, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session

from portal import explain
from portal.blueprints.setup import bp
from portal.blueprints.setup.shared_settings import (
    _errors,
    _respond,
    _saved,
)
from portal.errors import DomainError
from portal.extensions import db
from portal.geolocation import service as geocoding
from portal.geolocation.client import SAMPLE_ADDRESS, GeocodingError
from portal.settings import service as settings

GEOLOCATION = ("setup/geolocation.html", "geolocation_panel", "geolocation")


def _geolocation_context(session: Session, values: dict | None = None, errors: dict | None = None,
                         result=None, test_error: str = "", address: str = "", test_problem=None) -> dict:
    """What the geolocation page shows: provider and key mask, errors, and the last test's result."""
    stored = settings.public_value(settings.GEOLOCATION_DISCOVERY,
                                   settings.get_value(session, settings.GEOLOCATION_DISCOVERY))
    stored = stored if isinstance(stored, dict) else {}
    sandbox_url = _sandbox_geocoding()
    if values is None:
        # In the demo both providers are the sandbox: Google is chosen for the admin.
        values = {"provider": stored.get("provider") or ("google" if sandbox_url else "")}
    return {"values": values, "errors": errors or {}, "key_mask": stored.get("api_key"),
            "stored_provider": stored.get("provider"), "providers": settings.GEOLOCATION_PROVIDERS,
            "result": result, "test_error": test_error, "test_problem": test_problem,
            "address": address or SAMPLE_ADDRESS,
            "sample_address": SAMPLE_ADDRESS, "sandbox_url": sandbox_url}


def _sandbox_geocoding() -> str:
    """The demo sandbox's URL when both geocoding providers point at it (scripts/run-demo), else ""."""
    sandbox = current_app.config.get("DEMO_SANDBOX_URL") or ""
    hosts = (current_app.config["GEOCODING_GOOGLE_BASE_URL"], current_app.config["GEOCODING_YANDEX_BASE_URL"])
    return sandbox if sandbox and all(host.rstrip("/") == sandbox for host in hosts) else ""


@bp.route("/geolocation", methods=["GET", "POST"])
def geolocation():
    """Step 9: the geocoding provider and its API key (encrypted, shown masked)."""
    if request.method == "GET":
        return _respond(*GEOLOCATION, **_geolocation_context(db.session))
    values = {"provider": request.form.get("provider", "")}
    try:
        changed = geocoding.save_settings(db.session, values["provider"], request.form.get("api_key", ""),
                                            user_id=current_user.id)
    except DomainError as exc:
        db.session.rollback()
        return _respond(*GEOLOCATION, http_status=422,
                        **_geolocation_context(db.session, values, _errors(exc, ("provider", "api_key"))))
    if request.form.get("then") == "test":
        # "Save and test": the saved key is tried at once on the sample address; the panel shows both.
        code, outcome = _tested(SAMPLE_ADDRESS)
        return _respond(*GEOLOCATION, http_status=code, toast=_("Geolocation settings saved."), **outcome)
    message = _("Geolocation settings saved. Test the key to finish this step.") if changed else \
        _("Geolocation settings saved (unchanged).")
    return _saved("setup.geolocation", *GEOLOCATION, message, **_geolocation_context(db.session))


def _tested(address: str) -> tuple[int, dict]:
    """Geocode an address with the saved key: (HTTP status, the page's context with the result or the problem)."""
    try:
        found = geocoding.check_saved_key(db.session, current_app.config, user_id=current_user.id,
                                            address=address)
    except GeocodingError as exc:
        return 200, _geolocation_context(db.session, test_error=exc.message, address=address,
                                         test_problem=explain.geocoding(exc))
    except DomainError as exc:
        db.session.rollback()
        return 422, _geolocation_context(db.session, test_error=exc.message, address=address)
    return 200, _geolocation_context(db.session, result=found, address=address)


@bp.post("/geolocation/test")
def geolocation_test():
    """Geocode a sample address with the saved key; shows the coordinates or why it failed."""
    code, outcome = _tested((request.form.get("address") or "").strip())
    return _respond(GEOLOCATION[0], "geolocation_test", GEOLOCATION[2], http_status=code, **outcome)
