"""The frame shared by the editor steps (2 users, 13 package commands, 15 jobs).

Each route parses the form, calls one domain function and answers with the page, or for htmx with
the changed fragments (the step's state chip swapped out of band) and a toast. Bad input answers
422 with the form and its message; nothing was changed.
"""
from __future__ import annotations

import json

from flask import abort, flash, make_response, redirect, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.blueprints.setup.shared import step_page, step_url
from portal.errors import DomainError
from portal.extensions import db
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.web import render_block, with_toast


def _as_json(value) -> str:
    """A JSON value as the text an admin edits in a textarea."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def _refresh_step(key: str, check) -> None:
    """Record the step as done when its check passes; say what is missing when it does not."""
    ok, note = check(db.session)
    state = wizard.status(db.session, key).state
    if ok:
        if state != SetupStep.DONE:
            wizard.mark(db.session, key, SetupStep.DONE, user_id=current_user.id, note=note)
    elif state == SetupStep.DONE:
        wizard.mark(db.session, key, SetupStep.NEEDS_ATTENTION, user_id=current_user.id, note=note)
    elif state != SetupStep.SKIPPED:
        wizard.mark(db.session, key, SetupStep.IN_PROGRESS, user_id=current_user.id, note=note)


def _fragments(template: str, key: str, blocks: list[str], *, code: int = 200,
               toast: tuple[str, str] | None = None, close_modal: bool = False, **context):
    """Several blocks of a step page as one htmx answer (the ones marked oob swap themselves into place)."""
    # In an htmx answer the panels always swap themselves into place (out of band).
    context.update(status=wizard.status(db.session, key), step_url=step_url, form=FlaskForm(), oob=True)
    body = "".join(render_block(template, name, **context) for name in blocks)
    response = make_response(body, code)
    response.vary.add("HX-Request")
    if toast:
        with_toast(response, *toast)
    if close_modal:
        events = json.loads(response.headers.get("HX-Trigger", "{}"))
        events["close-modal"] = True
        response.headers["HX-Trigger"] = json.dumps(events)
    return response


def _error_context(exc: DomainError) -> dict:
    """The message and the field it concerns, for the form."""
    return {"error": exc.message, "error_field": exc.field}


def _page(template: str, key: str, code: int = 200, **context):
    """A step page with a status code (422 when it shows a refused form)."""
    return make_response(step_page(template, key, **context), code)


def _done(message: str, endpoint: str):
    """Without htmx: flash the outcome and go back to the step page."""
    flash(message, "success")
    return redirect(url_for(endpoint))


def _not_found():
    """404 for a user, command or job that is not there (any more)."""
    abort(404)
