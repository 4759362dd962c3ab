"""The wizard's frame, shared by every step page: a step's URL, and a step page with its state and skip form."""
from __future__ import annotations

from flask import current_app, render_template, url_for
from flask_wtf import FlaskForm

from portal.extensions import db
from portal.setup import service as wizard
from portal.web import answer


def step_url(step) -> str | None:
    """The URL of a step's page, or None when that page is not part of this build."""
    if step.endpoint in current_app.view_functions:
        return url_for(step.endpoint)
    return None


def step_page(template: str, key: str, **context):
    """Render a step page with the wizard's frame: state, who completed it, dependencies, skip form."""
    return render_template(template, status=wizard.status(db.session, key), form=FlaskForm(),
                           step_url=step_url, **context)


def frame(key: str, **context) -> dict:
    """The wizard frame's context for a step page: its state, the CSRF form and step links."""
    return {"status": wizard.status(db.session, key), "form": FlaskForm(), "step_url": step_url, **context}


def step_answer(template: str, key: str, *parts: str, code: int = 200, toast: str | None = None,
                level: str = "success", events: dict | None = None, fragment: bool | None = None, **context):
    """A step page in the wizard's frame, or for htmx only the named parts of it (see portal.web.answer)."""
    return answer(template, *parts, code=code, toast=toast, level=level, events=events, fragment=fragment,
                  **frame(key, **context))
