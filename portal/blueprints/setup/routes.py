"""Routes: the wizard home, and skipping or reopening any step."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.blueprints.setup import bp
from portal.errors import DomainError
from portal.extensions import db
from portal.setup import service as wizard
from portal.setup.steps import BY_KEY


def step_url(step) -> str | None:
    """The URL of a step's page, or None when that page is not part of this build."""
    if step.endpoint in current_app.view_functions:
        return url_for(step.endpoint)
    return None


def step_page(template: str, key: str, **context):
    """Render a step page with the wizard's frame: state, who completed it, dependencies, skip form."""
    return render_template(template, status=wizard.status(db.session, key), form=FlaskForm(),
                           step_url=step_url, **context)


@bp.get("/")
def home():
    """The 15 steps with their state, who completed them, and overall progress."""
    finished, total = wizard.progress(db.session)
    return render_template("setup/home.html", statuses=wizard.statuses(db.session), finished=finished, total=total,
                           step_url=step_url)


@bp.post("/<key>/skip")
def skip(key: str):
    """Skip a step with a reason."""
    if key not in BY_KEY:
        abort(404)
    form = FlaskForm()
    if form.validate_on_submit():
        try:
            wizard.skip(db.session, key, request.form.get("reason", ""), user_id=current_user.id)
            flash(f"Step {BY_KEY[key].number} skipped.", "success")
        except DomainError as exc:
            flash(exc.message, "error")
    return redirect(step_url(BY_KEY[key]) or url_for("setup.home"))


@bp.post("/<key>/reopen")
def reopen(key: str):
    """Undo a skip."""
    if key not in BY_KEY:
        abort(404)
    form = FlaskForm()
    if form.validate_on_submit():
        wizard.reopen(db.session, key, user_id=current_user.id)
        flash(f"Step {BY_KEY[key].number} reopened.", "success")
    return redirect(step_url(BY_KEY[key]) or url_for("setup.home"))
