"""The frame shared by the settings steps (1, 3, 7, 8, 9): the page or its panel, and the Omnitron login.

Each page answers a normal visit with the whole step page and an htmx request with only the
panel it swaps (plus the step's state chip, out of band). Validation lives in the settings service,
so the form and the REST API give the same messages; a bad form changes nothing.
"""
from __future__ import annotations

from flask import current_app, flash, redirect, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from portal.blueprints.setup.shared import step_answer
from portal.errors import DomainError
from portal.omnitron import OmnitronClient
from portal.settings import service as settings
from portal.setup.steps import BY_KEY
from portal.web import is_fragment_request


def _respond(template: str, block: str, key: str, *, http_status: int = 200, toast: str = "", **context):
    """The whole step page, or for htmx the named block plus the step's state and note (out of band)."""
    return step_answer(template, key, block, "setup/_settings_state.html", code=http_status, toast=toast or None,
                       level="success" if http_status < 400 else "error", **context)


def _saved(endpoint: str, template: str, block: str, key: str, message: str, **context):
    """After a successful save: the panel with a toast for htmx, otherwise a redirect with a flash message."""
    if is_fragment_request():
        return _respond(template, block, key, toast=message, **context)
    flash(message, "success")
    return redirect(url_for(endpoint))


def _errors(exc: DomainError, fields: tuple[str, ...]) -> dict[str, str]:
    """A domain error as {field: message}; errors of no form field go under "form"."""
    return {exc.field if exc.field in fields else "form": exc.message}


def _omnitron_login(session: Session) -> tuple[str | None, str | None]:
    """The stored Omnitron username and decrypted password (None where not set or unreadable)."""
    value = settings.get_value(session, settings.OMNITRON_CLIENT_SETTINGS)
    username = value.get("auth", {}).get("username") if isinstance(value, dict) else None
    try:
        password = settings.get_secret(session, settings.OMNITRON_CLIENT_SETTINGS, ("auth", "password"))
    except ValueError:
        password = None
    return username, password


UNREACHABLE_HINT = _l("If it stays unreachable, open a job on the INF board with the brand's details and ask for "
                       "the OMS machine to be opened.")


def _check_client(config, username: str = "", password: str = "") -> OmnitronClient:
    """A client for a one-off check: no retries, since a check should show the truth now."""
    client = OmnitronClient.from_config(config, username, password)
    client.retries = 0
    return client


def _omnitron_context(session: Session, **extra) -> dict:
    """What steps 1 and 3 show: Omnitron's URL, the stored user, and the check's result or error."""
    username, _ = _omnitron_login(session)
    stored = settings.public_value(settings.OMNITRON_CLIENT_SETTINGS,
                                   settings.get_value(session, settings.OMNITRON_CLIENT_SETTINGS))
    mask = stored.get("auth", {}).get("password") if isinstance(stored, dict) else None
    context = {"omnitron_url": current_app.config.get("OMNITRON_URL", ""), "username": username,
               "password_mask": mask, "credentials_step": BY_KEY["omnitron_credentials"],
               "latency": None, "login": None, "error": "", "error_kind": "", "problem": None}
    context.update(extra)
    return context
