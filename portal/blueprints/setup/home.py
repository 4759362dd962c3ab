"""The wizard home (the 15 steps and the overall progress), and skipping or reopening any step."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.blueprints.setup import bp
from portal.blueprints.setup.shared import step_url
from portal.errors import DomainError
from portal.extensions import db
from portal.setup import rules
from portal.setup import service as wizard
from portal.setup.steps import BY_KEY


@bp.get("/")
def home():
    """What to do next, the steps needing attention with their reason, then the 15 steps in order.

    Settings saved before their step's rule existed are settled first, so a pre-filled step reads as done.
    """
    if rules.settle_saved_settings(db.session):
        db.session.commit()
    guide = wizard.guide(db.session)
    return render_template("setup/home.html", guide=guide, statuses=guide.statuses, finished=guide.finished,
                           total=guide.total, step_url=step_url)


@bp.post("/<key>/skip")
def skip(key: str):
    """Skip a step with a reason."""
    if key not in BY_KEY:
        abort(404)
    try:
        wizard.skip(db.session, key, request.form.get("reason", ""), user_id=current_user.id)
        flash(_("Step %(number)s skipped.", number=BY_KEY[key].number), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return redirect(step_url(BY_KEY[key]) or url_for("setup.home"))


@bp.post("/<key>/reopen")
def reopen(key: str):
    """Undo a skip."""
    if key not in BY_KEY:
        abort(404)
    wizard.reopen(db.session, key, user_id=current_user.id)
    flash(_("Step %(number)s reopened.", number=BY_KEY[key].number), "success")
    return redirect(step_url(BY_KEY[key]) or url_for("setup.home"))
