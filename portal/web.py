"""Web-layer helpers shared by the blueprints: full page or fragment, roles, errors, template filters."""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from functools import wraps
from typing import cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import dates as babel_dates
from babel import numbers as babel_numbers
from flask import Response, abort, current_app, g, make_response, redirect, render_template, request
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from htmx_flask.requests import HtmxHeaders
from sqlalchemy.exc import DataError
from sqlalchemy.orm import scoped_session
from werkzeug.routing import IntegerConverter
from werkzeug.wrappers import Response as BaseResponse

from portal.db_types import DB_INT_MAX, plain_int, utcnow
from portal.errors import DomainError, ValidationFailed
from portal.extensions import db, login_manager
from portal.i18n import N_
from portal.outage import OUTAGE_ERRORS  # raised anywhere in a request, these answer 503 (service_unavailable)
from portal.packages.states import DeliveryType, State, Visibility, state_info

log = logging.getLogger(__name__)


class BoundedIntConverter(IntegerConverter):
    """The <int:...> URL converter, refusing numbers no row id can have (the URL is then a 404, not a 500)."""

    def __init__(self, map, fixed_digits=0, min=None, max=None, signed=False):
        """As werkzeug's, with DB_INT_MAX as the default maximum."""
        super().__init__(map, fixed_digits, min, DB_INT_MAX if max is None else max, signed)


def check_int_args(args, names: tuple[str, ...]) -> None:
    """Refuse URL arguments meant as row ids or cursors that are not plain numbers; raises ValidationFailed."""
    for name in names:
        raw = (args.get(name) or "").strip()
        if raw and plain_int(raw) is None:
            raise ValidationFailed(_("%(name)s must be a number.", name=name), field=name)


def htmx_headers() -> HtmxHeaders:
    """The request's htmx headers, typed (htmx_flask adds them as `request.htmx`, which the type checker cannot see)."""
    headers = getattr(request, "htmx", None)
    return headers if isinstance(headers, HtmxHeaders) else HtmxHeaders(request.headers)


def is_htmx() -> bool:
    """True for any request htmx made (boosted ones and history restores too)."""
    return bool(htmx_headers())


def is_fragment_request() -> bool:
    """True when htmx asks for a fragment: an htmx request that is neither boosted nor a history restore."""
    htmx = htmx_headers()
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_block(template_name: str, block_name: str, **context) -> str:
    """Render one named block of a page template, with the usual template context."""
    current_app.update_template_context(context)
    template = current_app.jinja_env.get_template(template_name)
    return "".join(template.blocks[block_name](template.new_context(context)))


def _render_parts(template_name: str, parts: Iterable[str], context: dict) -> str:
    """Named blocks of a page template, in order; a part naming a template file ("x/_y.html") renders that file."""
    return "".join(render_template(part, **context) if part.endswith(".html") else
                   render_block(template_name, part, **context) for part in parts)


def add_events(response: Response, events: Mapping[str, object] | None = None, *, toast: str | None = None,
               level: str = "success") -> Response:
    """Merge client events (and a "toast" event) into the response's one HX-Trigger header (a JSON object)."""
    merged = json.loads(response.headers.get("HX-Trigger") or "{}")
    merged.update(events or {})
    if toast:
        merged["toast"] = {"message": str(toast), "level": level}
    if merged:
        response.headers["HX-Trigger"] = json.dumps(merged)
    return response


def htmx_response(body: str = "", code: int = 200, *, toast: str | None = None, level: str = "success",
                  events: Mapping[str, object] | None = None, headers: Mapping[str, str] | None = None) -> Response:
    """A response for htmx: the body, a status code, a toast and client events in one HX-Trigger header.

    Always Vary: HX-Request, since the same URL answers a fragment or the whole page.
    """
    response = make_response(body, code)
    response.vary.add("HX-Request")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return add_events(response, events, toast=toast, level=level)


def answer(template_name: str, *parts: str, code: int = 200, toast: str | None = None, level: str = "success",
           events: Mapping[str, object] | None = None, fragment: bool | None = None,
           headers: Mapping[str, str] | None = None, **context) -> Response:
    """The one way to answer a page that htmx also asks for parts of.

    A normal visit gets the whole page; an htmx request (or fragment=True) gets only the named parts: blocks
    of the page template, or whole template files for names ending in ".html", in order (the ones marked
    hx-swap-oob swap themselves into place). The status code (`code`; `status` is left to the template), a toast
    (level "success", "error" or "info") and extra client events go with either; toast and events are merged
    into one HX-Trigger header.
    """
    if fragment is None:
        fragment = is_fragment_request()
    if fragment and parts:
        body = _render_parts(template_name, parts, context)
    else:
        body = render_template(template_name, **context)
    return htmx_response(body, code, toast=toast, level=level, events=events, headers=headers)


def hx_redirect(target: str, *, code: int = 302) -> BaseResponse:
    """Go to another page: a full page load for htmx (HX-Redirect, not HX-Location, whose request would get only
    a fragment), a plain redirect otherwise."""
    if is_htmx():
        return htmx_response("", 204, headers={"HX-Redirect": target})
    return redirect(target, code=code)


def nothing(code: int = 204, *, toast: str | None = None, level: str = "success",
            events: Mapping[str, object] | None = None) -> Response:
    """An answer that swaps nothing (HX-Reswap: none), with an optional toast and client events."""
    return htmx_response("", code, toast=toast, level=level, events=events, headers={"HX-Reswap": "none"})


def role_required(*roles: str):
    """Allow only logged-in users with one of these roles (403 otherwise)."""
    def decorator(view):
        """Wrap the view."""
        @wraps(view)
        def wrapped(*args, **kwargs):
            """Check the role, then run the view."""
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


def user_store_ids():
    """Stores the current user may see: None (all) for admins and brand managers."""
    return None if current_user.sees_all_stores else current_user.store_ids


def _zone(tz_name: str | None) -> ZoneInfo:
    """The named time zone (a store's), else the brand's DISPLAY_TIMEZONE; UTC for a name the system lacks."""
    try:
        return ZoneInfo(tz_name or current_app.config["DISPLAY_TIMEZONE"])
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _locale() -> str:
    """The current locale's name for babel ("en", "tr")."""
    return str(get_locale() or current_app.config.get("BABEL_DEFAULT_LOCALE", "en"))


def local_time(value: datetime | None, tz_name: str | None = None) -> str:
    """A datetime in the store's time zone, the same way everywhere, month named in the locale: 22 Nov 2026 14:05,
    22 Kas 2026 14:05. Every template shows moments through this filter (clock_time, for a time of today, has digits only)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return babel_dates.format_datetime(value, "dd MMM y HH:mm", tzinfo=_zone(tz_name), locale=_locale())


def number(value: float | int | None) -> str:
    """A number as the locale writes it: 1,234.5 in English, 1.234,5 in Turkish."""
    if value is None:
        return ""
    return babel_numbers.format_decimal(value, locale=_locale())


def phone(value: str | None) -> str:
    """A phone number grouped for reading aloud: +90 532 123 45 67 (Turkish numbers, in either language); other
    numbers as stored."""
    text = (value or "").strip()
    digits = text.replace(" ", "")
    if digits.startswith("+90") and len(digits) == 13 and digits[1:].isdigit():
        national = digits[3:]
        return f"+90 {national[:3]} {national[3:6]} {national[6:8]} {national[8:]}"
    return text


def age(value: datetime | None) -> str:
    """How long ago: "5 min", "2 h", "3 d" (translated; the unit after the number as the locale writes it)."""
    if value is None:
        return ""
    seconds = max(int((utcnow() - value).total_seconds()), 0)
    if seconds < 3600:
        minutes = max(seconds // 60, 1)
        return ngettext("%(num)d min", "%(num)d min", minutes)
    if seconds < 86400:
        return ngettext("%(num)d h", "%(num)d h", seconds // 3600)
    return ngettext("%(num)d d", "%(num)d d", seconds // 86400)


def html_lang() -> str:
    """The language of the page for <html lang>: the request's locale as a BCP 47 tag ("en", "pt-BR")."""
    locale = get_locale()
    return str(locale).replace("_", "-") if locale is not None else current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


def init_app(app) -> None:
    """Register filters, globals and error pages."""
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["number"] = number
    app.jinja_env.filters["phone"] = phone
    app.jinja_env.filters["age"] = age
    app.jinja_env.globals.update(
        html_lang=html_lang, state_info=state_info, DeliveryType=DeliveryType, Visibility=Visibility, State=State,
    )

    # Registered after Flask-SQLAlchemy's own teardown, so it runs first (Flask runs them in reverse order).
    app.teardown_appcontext(end_session_after_an_outage)

    @app.after_request
    def private_pages_are_not_stored(response):
        """Pages for a logged-in user hold customers' names and phones: no browser or proxy may keep them.

        On a shared store tablet, Back after logging out must ask the server (which sends the login
        page), not show a stored copy; htmx keeps no page snapshots either (historyCacheSize 0 in base.html).
        """
        if request.endpoint == "static":  # long-cached files; and no need to load the user for them
            return response
        try:
            private = current_user.is_authenticated
        except OUTAGE_ERRORS:  # the user could not be loaded (the database is down): keep the page out of caches
            db.session.rollback()
            private = True
        if private and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        response.vary.add("HX-Request")  # the same URL answers a fragment or the whole page
        return response

    @app.errorhandler(CSRFError)
    def form_expired(error: CSRFError):
        """A form posted without a valid CSRF token (most often a page left open too long): say the form expired.

        A normal post gets the error page; htmx gets a toast and swaps nothing. Nothing was changed.
        """
        message = _("The form expired: reload the page and try again.")
        log.info("refused %s %s: %s", request.method, request.path, error.description)
        if is_fragment_request():
            return nothing(400, toast=message, level="error")
        return _error_page(400, message)

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        """A domain error that reached the web layer unhandled: show its message on an error page."""
        return _error_page(error.http_status, error.message)

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def number_too_large(error: Exception):
        """A value the database cannot hold reached a query (a forged huge id, say): the request's fault, a 400."""
        db.session.rollback()
        log.warning("refused %s %s: %s", request.method, request.path, error)
        return _error_page(400, _("A value in the request is too large."))

    for status, message in ERROR_MESSAGES.items():
        app.register_error_handler(status, _make_handler(status, message))
    for outage in OUTAGE_ERRORS:
        app.register_error_handler(outage, service_unavailable)


UNAVAILABLE_MESSAGE = N_("The service is unavailable for a moment (the database or the job queue cannot be reached). "
                         "Please try again in a few seconds.")


def service_unavailable(error: Exception):
    """The database or Redis is unreachable (restarting, say): a 503 with Retry-After, never a stack trace.

    HTML gets the error page, htmx the error fragment, the API {"detail", "code": "unavailable"}. The session's
    transaction is rolled back (its connection is invalidated, and the pool's pre-ping replaces dead connections),
    so the next request works as soon as the database is back, without a restart. The page is rendered for an
    anonymous visitor when the user could not be loaded: loading them needs the database that is down.
    """
    log.warning("unavailable: %s %s: %s", request.method, request.path, _summary(error))
    _rollback()
    _load_user_or_anonymous()
    retry_after = str(current_app.config.get("UNAVAILABLE_RETRY_AFTER_SECONDS", 5))
    message = _(UNAVAILABLE_MESSAGE)
    if request.path.startswith("/api/"):
        response = make_response({"detail": message, "code": "unavailable"}, 503)
    else:
        try:
            response = _error_page(503, message)
        except OUTAGE_ERRORS:  # the page itself needed the database (a template asked for a record)
            _rollback()
            g._login_user = login_manager.anonymous_user()
            response = make_response(render_template("error.html", message=message, status=503), 503)
    response.headers["Retry-After"] = retry_after
    response.headers["Cache-Control"] = "no-store"
    return response


# The error page's message per HTTP status: plain English, translated when the page is rendered.
ERROR_MESSAGES = {
    400: N_("The request was not understood."),
    403: N_("You may not open this page."),
    404: N_("This page does not exist, or it is not in your store."),
    405: N_("That action is not allowed here."),
    413: N_("That request is too large."),
    429: N_("Too many requests. Please wait a moment and try again."),
    500: N_("Something went wrong on our side. Please try again."),
}


def _make_handler(status: int, message: str):
    """An error handler that renders the error page with a fixed message (translated for the request)."""
    def handler(error):
        """Render the error page (JSON for the API)."""
        return _error_page(status, _(message))
    return handler


def _summary(error: BaseException) -> str:
    """An outage error for the log: its class and the first line of its message (not the statement after it)."""
    message = str(error)
    return f"{type(error).__name__}: {message.splitlines()[0] if message else ''}"


def end_session_after_an_outage(error: BaseException | None) -> None:
    """End the request's session; when the database went away during the request, drop its connection quietly.

    Ending the session rolls its transaction back. If the server was stopped after the request's last statement
    (a restart, say), that ROLLBACK fails with "terminating connection due to administrator command": raised from
    a teardown, it would replace the answer already made (a page, a 204) with the server's bare 500. The connection
    is invalidated instead (the pool opens a new one on the next request) and the answer stands.
    """
    scoped = cast(scoped_session, db.session)  # the proxy Flask-SQLAlchemy makes (portal/typed_db.py says Session)
    try:
        scoped.remove()
    except OUTAGE_ERRORS as exc:
        log.warning("the database went away before the request's session ended: %s", _summary(exc))
        try:
            scoped().invalidate()  # the session whose close failed: still in the registry
        except Exception:  # noqa: BLE001 - the connection is gone either way; the session is dropped below
            log.debug("invalidating the session after an outage failed", exc_info=True)
        scoped.registry.clear()


def _rollback() -> None:
    """Roll the request's transaction back after an outage; a dead connection is dropped at the request's end."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is gone; the session is removed at the end of the request
        log.debug("rollback after an outage failed", exc_info=True)


def _load_user_or_anonymous() -> None:
    """Load the request's user now; when the database cannot be reached, go on as an anonymous visitor.

    Every page (and the choice of its language) asks for the user: during an outage an error page must not fail
    for want of it.
    """
    try:
        current_user.is_authenticated  # noqa: B018 - loads the user (a database query) now
    except OUTAGE_ERRORS:
        _rollback()
        g._login_user = login_manager.anonymous_user()


def _error_page(status: int, message: str):
    """The error page, or JSON under /api/."""
    _load_user_or_anonymous()
    if request.path.startswith("/api/"):
        return {"detail": message, "code": str(status)}, status
    if is_fragment_request():
        response = make_response(render_template("_error_fragment.html", message=message, status=status), status)
    else:
        response = make_response(render_template("error.html", message=message, status=status), status)
    response.vary.add("HX-Request")
    return response
