"""The wizard's frame, shared by every step page: a step's URL, and a step page with its state and skip form."""
from __future__ import annotations

from flask import current_app, render_template, url_for
from flask_wtf import FlaskForm

from portal.extensions import db
from portal.setup import service as wizard


def step_url(step) -> str | None:
    """The URL of a step's page, or None when that page is not part of this build."""
    if step.endpoint in current_app.view_functions:
        return url_for(step.endpoint)
    return None


def step_page(template: str, key: str, **context):
    """Render a step page with the wizard's frame: state, who completed it, dependencies, skip form."""
    return render_template(template, status=wizard.status(db.session, key), form=FlaskForm(),
                           step_url=step_url, **context)
