"""Web-layer helpers shared by the blueprints: full page or fragment, roles, errors, template filters."""
from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from functools import wraps
from zoneinfo import ZoneInfo

from flask import abort, current_app, make_response, render_template, request
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from portal.db_types import DB_INT_MAX, plain_int, utcnow
from portal.errors import DomainError, ValidationFailed
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
            raise ValidationFailed(f"{name} must be a number.", field=name)


def is_fragment_request() -> bool:
    """True when htmx asks for a fragment: an htmx request that is neither boosted nor a history restore."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_block(template_name: str, block_name: str, **context) -> str:
    """Render one named block of a page template, with the usual template context."""
    app = current_app._get_current_object()
    app.update_template_context(context)
    template = app.jinja_env.get_template(template_name)
    return "".join(template.blocks[block_name](template.new_context(context)))


def page_or_fragment(template_name: str, block_name: str, status: int = 200, **context):
    """The whole page for a normal visit; only the named block for an htmx swap. Always Vary: HX-Request."""
    if is_fragment_request():
        body = render_block(template_name, block_name, **context)
    else:
        body = render_template(template_name, **context)
    response = make_response(body, status)
    response.vary.add("HX-Request")
    return response


def with_toast(response, message: str, level: str = "success"):
    """Attach an HX-Trigger "toast" event that the page shows as a short message."""
    existing = response.headers.get("HX-Trigger")
    events = json.loads(existing) if existing else {}
    events["toast"] = {"message": message, "level": level}
    response.headers["HX-Trigger"] = json.dumps(events)
    return response


def role_required(*roles: str):
    """Allow only logged-in users with one of these roles (403 otherwise)."""
    def decorator(view):
        """Wrap the view."""
        @wraps(view)
        def wrapped(*args, **kwargs):
            """Check the role, then run the view."""
            if not current_user.is_authenticated:
                return current_app.login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped
    return decorator


def user_store_ids():
    """Stores the current user may see: None (all) for admins and brand managers."""
    return None if current_user.sees_all_stores else current_user.store_ids


def local_time(value: datetime | None, tz_name: str | None = None) -> str:
    """A datetime in the store's time zone, the same way everywhere: 22 Nov 2026 14:05."""
    if value is None:
        return ""
    tz = ZoneInfo(tz_name or current_app.config["DISPLAY_TIMEZONE"])
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(tz).strftime("%d %b %Y %H:%M")


def age(value: datetime | None) -> str:
    """How long ago: "5 min", "2 h", "3 d"."""
    if value is None:
        return ""
    seconds = max(int((utcnow() - value).total_seconds()), 0)
    if seconds < 3600:
        return f"{max(seconds // 60, 1)} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def init_app(app) -> None:
    """Register filters, globals and error pages."""
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["age"] = age
    app.jinja_env.globals.update(
        state_info=state_info, DeliveryType=DeliveryType, Visibility=Visibility, State=State,
    )

    @app.after_request
    def private_pages_are_not_stored(response):
        """Pages for a logged-in user hold customers' names and phones: no browser or proxy may keep them.

        On a shared store tablet, Back after logging out must ask the server (which sends the login
        page), not show a stored copy; htmx keeps no page snapshots either (historyCacheSize 0 in base.html).
        """
        if request.endpoint == "static":  # long-cached files; and no need to load the user for them
            return response
        if current_user.is_authenticated and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        response.vary.add("HX-Request")  # the same URL answers a fragment or the whole page
        return response

    @app.errorhandler(DomainError)
    def domain_error(error: DomainError):
        """A domain error that reached the web layer unhandled: show its message on an error page."""
        return _error_page(error.http_status, error.message)

    from sqlalchemy.exc import DataError

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def number_too_large(error: Exception):
        """A value the database cannot hold reached a query (a forged huge id, say): the request's fault, a 400."""
        from portal.extensions import db

        db.session.rollback()
        log.warning("refused %s %s: %s", request.method, request.path, error)
        return _error_page(400, "A value in the request is too large.")

    for status, message in ((400, "The request was not understood."), (403, "You may not open this page."),
                            (404, "This page does not exist, or it is not in your store."),
                            (405, "That action is not allowed here."),
                            (413, "That request is too large."),
                            (429, "Too many requests. Please wait a moment and try again."),
                            (500, "Something went wrong on our side. Please try again.")):
        app.register_error_handler(status, _make_handler(status, message))


def _make_handler(status: int, message: str):
    """An error handler that renders the error page with a fixed message."""
    def handler(error):
        """Render the error page (JSON for the API)."""
        return _error_page(status, message)
    return handler


def _error_page(status: int, message: str):
    """The error page, or JSON under /api/."""
    if request.path.startswith("/api/"):
        return {"detail": message, "code": str(status)}, status
    if is_fragment_request():
        response = make_response(render_template("_error_fragment.html", message=message, status=status), status)
    else:
        response = make_response(render_template("error.html", message=message, status=status), status)
    response.vary.add("HX-Request")
    return response
