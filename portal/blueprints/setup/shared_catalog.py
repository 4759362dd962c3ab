"""The frame shared by steps 10 (stock integration), 11 (scenarios) and 14 (cargo companies).

Each route parses the form, calls one domain function and answers with the page, or (for htmx) the
step's panel or a row, plus an out-of-band update of the step's state chip and a toast.
"""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask_babel import gettext as _

from portal.blueprints.setup.shared import frame, step_answer
from portal.errors import ValidationFailed
from portal.web import add_events, is_fragment_request, plain_int


def _context(key: str, **context) -> dict:
    """The wizard frame's context for a step page: its state, the CSRF form and step links."""
    return frame(key, **context)


def _respond(template: str, block: str, key: str, code: int = 200, *, state_changed: bool = False, **context):
    """The whole page, or for an htmx swap the named block (plus the step's state chip when it may have changed)."""
    parts = (block, "setup/_step_state_oob.html") if state_changed else (block,)
    return step_answer(template, key, *parts, code=code, **context)


def _done(message: str, endpoint: str, fragment, level: str = "success"):
    """After a successful action: the fragment with a toast for htmx, else flash and redirect."""
    if is_fragment_request():
        return add_events(fragment(), toast=message, level=level)
    flash(message, "success" if level == "success" else "error")
    return redirect(url_for(endpoint))


def _form_int(name: str) -> int | None:
    """An optional whole-number form field (None when empty); raises ValidationFailed otherwise."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    if plain_int(raw) is None:
        raise ValidationFailed(_("%(name)s must be a whole number.", name=name), field=name)
    return plain_int(raw)
