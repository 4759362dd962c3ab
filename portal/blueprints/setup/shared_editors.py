"""The frame shared by the editor steps (2 users, 13 package commands, 15 jobs).

Each route parses the form, calls one domain function and answers with the page, or for htmx with
the changed fragments (the step's state chip swapped out of band) and a toast. Bad input answers
422 with the form and its message; nothing was changed.
"""
from __future__ import annotations

import json

from flask import abort, flash, redirect, url_for

from portal.blueprints.setup.shared import step_answer
from portal.errors import DomainError


def _as_json(value) -> str:
    """A JSON value as the text an admin edits in a textarea."""
    return json.dumps(value, indent=2, ensure_ascii=False)


def _fragments(template: str, key: str, blocks: list[str], *, code: int = 200,
               toast: tuple[str, str] | None = None, close_modal: bool = False, **context):
    """Several blocks of a step page as one htmx answer; in it the panels always swap themselves into place (oob)."""
    message, level = toast or (None, "success")
    return step_answer(template, key, *blocks, code=code, toast=message, level=level, fragment=True,
                       events={"close-modal": True} if close_modal else None, **{**context, "oob": True})


def _error_context(exc: DomainError) -> dict:
    """The message and the field it concerns, for the form."""
    return {"error": exc.message, "error_field": exc.field}


def _page(template: str, key: str, code: int = 200, **context):
    """A step page with a status code (422 when it shows a refused form)."""
    return step_answer(template, key, code=code, fragment=False, **context)


def _done(message: str, endpoint: str):
    """Without htmx: flash the outcome and go back to the step page."""
    flash(message, "success")
    return redirect(url_for(endpoint))


def _not_found():
    """404 for a user, command or job that is not there (any more)."""
    abort(404)
