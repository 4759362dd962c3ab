"""The frame shared by steps 10 (stock integration), 11 (scenarios) and 14 (cargo companies).

Each route parses the form, calls one domain function and answers with the page, or (for htmx) the
step's panel or a row, plus an out-of-band update of the step's state chip and a toast.
"""
from __future__ import annotations

from flask import flash, make_response, redirect, render_template, request, url_for
from flask_wtf import FlaskForm

from portal.blueprints.setup.shared import step_url
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.setup import service as wizard
from portal.web import is_fragment_request, plain_int, render_block, with_toast

FORM_EXPIRED = "The form expired; reload the page and try again."


def _context(key: str, **context) -> dict:
    """The wizard frame's context for a step page: its state, the CSRF form and step links."""
    return {"status": wizard.status(db.session, key), "form": FlaskForm(), "step_url": step_url, **context}


def _respond(template: str, block: str, key: str, code: int = 200, *, state_changed: bool = False, **context):
    """The whole page, or for an htmx swap the named block (plus the step's state chip when it may have changed)."""
    context = _context(key, **context)
    if is_fragment_request():
        body = render_block(template, block, **context)
        if state_changed:
            body += render_template("setup/_step_state.html", oob=True, **context)
    else:
        body = render_template(template, **context)
    response = make_response(body, code)
    response.vary.add("HX-Request")
    return response


def _csrf_ok() -> bool:
    """True when the posted form carries a valid CSRF token."""
    return FlaskForm().validate_on_submit()


def _done(message: str, endpoint: str, fragment, level: str = "success"):
    """After a successful action: the fragment with a toast for htmx, else flash and redirect."""
    if is_fragment_request():
        return with_toast(fragment(), message, level)
    flash(message, "success" if level == "success" else "error")
    return redirect(url_for(endpoint))


def _form_int(name: str) -> int | None:
    """An optional whole-number form field (None when empty); raises ValidationFailed otherwise."""
    raw = (request.form.get(name) or "").strip()
    if not raw:
        return None
    if plain_int(raw) is None:
        raise ValidationFailed(f"{name} must be a whole number.", field=name)
    return plain_int(raw)
