"""Product stock integrations (setup step 10): define where the OMS asks for physical stock, and test it.

The password (or token) is encrypted at rest with portal.crypto and never shown back in full. Saving
without a password, or with its mask, keeps the stored one. Every create, update and delete writes an
audit row (area "stock_integration", key: the URL without its query), never the secret itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import crypto, outbound
from portal.db_types import utcnow
from portal.errors import NotFound, ValidationFailed
from portal.integrations.engines import ENGINES, TOKEN_AUTH, ProbeResult, StockEngine, get_engine
from portal.integrations.models import StockIntegration
from portal.settings import service as settings
from portal.setup import service as wizard

STEP_KEY = "stock_integration"
AUDIT_AREA = "stock_integration"
DEFAULT_TIMEOUT_SECONDS = 5.0


def available_stock_engines() -> list[dict]:
    """Every stock engine: [{type, name, requires_credentials, credentials}]."""
    return [engine.as_json() for engine in ENGINES.values()]


def list_integrations(session: Session) -> list[StockIntegration]:
    """Every integration, active ones first."""
    return list(session.scalars(select(StockIntegration)
                                .order_by(StockIntegration.is_active.desc(), StockIntegration.id)))


def get_integration(session: Session, integration_id: int) -> StockIntegration:
    """One integration; raises NotFound."""
    integration = session.get(StockIntegration, integration_id)
    if integration is None:
        raise NotFound(_("No stock integration with id %(id)s.", id=integration_id))
    return integration


def clean_url(value: object, field: str = "url") -> str:
    """A trimmed http(s) URL without embedded credentials that the SSRF guard lets through (portal.outbound);
    raises ValidationFailed."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed(_("The URL is required."), field=field)
    url = value.strip()
    if len(url) > 500:
        raise ValidationFailed(_("The URL is too long (at most 500 characters)."), field=field)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it validates the port number
    except ValueError:
        raise ValidationFailed(_("The URL is not valid."), field=field) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ValidationFailed(_("The URL must start with http:// or https:// and name a host."), field=field)
    if parts.username or parts.password:
        # A password in the URL would be stored and shown in plain text.
        raise ValidationFailed(_("Put the username and password in their own fields, not in the URL."),
                               field=field)
    # The SSRF guard: a private, loopback or metadata address is refused unless a setting allows it.
    outbound.ensure_allowed(url, outbound.current_policy(), field=field)
    return url.rstrip("/")


def _audit_key(url: str) -> str:
    """The audit key of an integration: its URL without query or fragment (they may carry a key)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"[:80]


def _engine(engine_type: object) -> StockEngine:
    """The engine named by the input; raises ValidationFailed for an unknown one."""
    engine = get_engine(engine_type) if isinstance(engine_type, str) else None
    if engine is None:
        known = ", ".join(ENGINES)
        raise ValidationFailed(_("Choose a stock engine (%(known)s).", known=known), field="stock_engine_type")
    return engine


def _text(value: object, field: str, label: str, limit: int) -> str:
    """A trimmed optional text input; raises ValidationFailed when it is not text or too long.

    `label` is already translated: it starts the messages.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationFailed(_("%(label)s must be text.", label=label), field=field)
    value = value.strip()
    if len(value) > limit:
        raise ValidationFailed(_("%(label)s is too long (at most %(limit)s characters).", label=label, limit=limit),
                               field=field)
    return value


def password_mask(integration: StockIntegration) -> str:
    """The stored password as it may be shown: a mask (with the last two characters of long ones), or ""."""
    if not integration.password_encrypted:
        return ""
    try:
        return settings.mask(crypto.decrypt(integration.password_encrypted))
    except ValueError:
        return settings.MASK


def save_integration(session: Session, *, url: object, stock_engine_type: object, username: object = None,
                     password: object = None, is_active: bool = True, integration_id: int | None = None,
                     upsert_by_url: bool = False, user_id: int | None) -> tuple[StockIntegration, bool]:
    """Create or update an integration; returns (integration, created).

    With integration_id, that integration is updated; with upsert_by_url (the setup API's execute), the
    integration with the same URL is updated when there is one. Credentials are required only where the
    engine needs them; credentials the engine does not use are dropped. A changed URL, engine or
    credential clears the last connection test. Raises ValidationFailed, NotFound; nothing is saved then.
    """
    engine = _engine(stock_engine_type)
    url = clean_url(url)
    username = _text(username, "username", _("Username"), 120)
    password = _text(password, "password", _(engine.password_label), 500)
    if password.startswith(settings.MASK):
        password = ""  # the mask shown on the form means "keep the stored one"

    integration = get_integration(session, integration_id) if integration_id is not None else None
    same_url = session.scalar(select(StockIntegration).where(StockIntegration.url == url))
    if integration is None and same_url is not None:
        if not upsert_by_url:
            raise ValidationFailed(_("There is already an integration with this URL; edit it instead."),
                                   field="url")
        integration = same_url
    elif integration is not None and same_url is not None and same_url.id != integration.id:
        raise ValidationFailed(_("Another integration already uses this URL."), field="url")

    if "username" in engine.credentials and not username:
        raise ValidationFailed(_("The username is required for %(engine)s.", engine=_(engine.name)),
                               field="username")
    sealed = ""
    if "password" in engine.credentials:
        if password:
            sealed = crypto.encrypt(password)
        elif integration is not None and keeps_password(integration, engine):
            sealed = integration.password_encrypted
        else:
            if engine.auth == TOKEN_AUTH:
                message = _("The token is required for %(engine)s.", engine=_(engine.name))
            else:
                message = _("The password is required for %(engine)s.", engine=_(engine.name))
            raise ValidationFailed(message, field="password")
    if "username" not in engine.credentials:
        username = ""

    created = integration is None
    if integration is None:
        integration = StockIntegration(url=url, stock_engine_type=engine.type)
        session.add(integration)
    changed = created or (integration.url, integration.stock_engine_type, integration.username) != \
        (url, engine.type, username) or bool(password) or sealed != integration.password_encrypted
    integration.url = url
    integration.stock_engine_type = engine.type
    integration.username = username
    integration.password_encrypted = sealed
    integration.is_active = bool(is_active)
    integration.updated_at = utcnow()
    if changed:
        integration.last_test_at = None
        integration.last_test_ok = None
        integration.last_test_message = ""
    settings.audit(session, _audit_key(url), user_id=user_id, area=AUDIT_AREA,
                   action="create" if created else "update")
    session.flush()
    refresh_step(session, user_id=user_id)
    session.commit()
    return integration, created


def keeps_password(integration: StockIntegration | None, engine: StockEngine | None) -> bool:
    """True when saving the integration with this engine and no new password keeps the stored one.

    A password carries over between engines that take a password, but never becomes a token (or back).
    """
    if integration is None or engine is None or not integration.password_encrypted:
        return False
    stored = get_engine(integration.stock_engine_type)
    return stored is not None and "password" in engine.credentials and stored.password_label == engine.password_label


def delete_integration(session: Session, integration_id: int, *, user_id: int | None) -> None:
    """Remove an integration, with an audit row. Raises NotFound."""
    integration = get_integration(session, integration_id)
    settings.audit(session, _audit_key(integration.url), user_id=user_id, area=AUDIT_AREA, action="delete")
    session.delete(integration)
    session.flush()
    refresh_step(session, user_id=user_id)
    session.commit()


@dataclass(frozen=True)
class ConnectionTest:
    """An integration after its connection test, and what the test found."""

    integration: StockIntegration
    result: ProbeResult


def run_connection_test(session: Session, integration_id: int, *, user_id: int | None,
                    timeout: float | None = None) -> ConnectionTest:
    """Call the integration's stock service once (timeout 5 s unless configured) and record the outcome.

    Raises NotFound. A failed call is not an error: it is recorded and described in the result.
    """
    integration = get_integration(session, integration_id)
    if timeout is None:
        timeout = float(current_app.config.get("STOCK_ENGINE_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
    engine = get_engine(integration.stock_engine_type)
    if engine is None:
        result = ProbeResult(False, _("The stock engine %(engine)s is no longer known; choose another one.",
                                      engine=repr(integration.stock_engine_type)))
    else:
        try:
            password = crypto.decrypt(integration.password_encrypted) if integration.password_encrypted else ""
        except ValueError:
            result = ProbeResult(False, _("The stored password cannot be read with the current encryption keys; "
                                          "enter it again."))
        else:
            # The session's transaction is closed before waiting on the network, so no lock is held meanwhile.
            session.commit()
            result = engine.probe(integration.url, integration.username, password, timeout=timeout)
    integration.last_test_at = utcnow()
    integration.last_test_ok = result.ok
    integration.last_test_message = result.message[:1000]
    session.flush()
    refresh_step(session, user_id=user_id, failure=None if result.ok else f"{integration.url}: {result.message}")
    session.commit()
    return ConnectionTest(integration, result)


def refresh_step(session: Session, *, user_id: int | None, failure: str | None = None) -> None:
    """Step 10 is done when an active integration passed its connection test (not committed)."""
    integrations = list_integrations(session)
    passed = any(i.is_active and i.last_test_ok for i in integrations)
    if failure:
        note = _("The connection test failed. %(failure)s", failure=failure)
    elif not integrations:
        note = _("Add a stock integration.")
    elif not any(i.is_active for i in integrations):
        note = _("Every stock integration is inactive; activate one and test its connection.")
    else:
        note = _("Test the connection of an active integration to finish this step.")
    wizard.settle(session, STEP_KEY, passed, user_id=user_id, note=note, attention=bool(failure))
