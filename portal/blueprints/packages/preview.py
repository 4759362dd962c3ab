"""Dry run from the package page: "Preview" under "More" shows what a command would do; nothing is written."""
from __future__ import annotations

from flask import abort
from flask_login import current_user, login_required

from portal.blueprints.packages import actions, bp
from portal.blueprints.packages.routes import MANAGER_ROLES, _visible_transition
from portal.errors import DomainError, NotFound
from portal.extensions import db
from portal.packages import dry_run, queries
from portal.web import answer, role_required, user_store_ids


@bp.app_template_global("can_preview_commands")
def can_preview_commands() -> bool:
    """Whether the signed-in user sees the commands' previews (admins and brand managers)."""
    return bool(current_user.is_authenticated and current_user.role in MANAGER_ROLES)


@bp.get("/packages/<int:package_id>/preview/<slug>")
@login_required
@role_required(*MANAGER_ROLES)
def preview_command(package_id: int, slug: str):
    """What running a command on this package would do, assuming its input is right (every item scanned,
    the right code); a modal fragment for htmx, a page otherwise."""
    store_ids = user_store_ids()
    package = queries.get_package(db.session, package_id, store_ids)
    transition = _visible_transition(package, slug)
    params = dry_run.sample_params(db.session, package, transition)
    result, error = None, None
    try:
        result = dry_run.preview_command(db.session, package.id, transition_id=transition.id, params=params,
                                         user_id=current_user.id, store_ids=store_ids,
                                         visibility=current_user.visibility)
    except NotFound:
        abort(404)
    except DomainError as exc:
        error = exc.message
    package = queries.get_package(db.session, package_id, store_ids)
    return answer("packages/preview.html", "preview_body", package=package, transition=transition,
                  preview=result, preview_error=error, label=actions.wording(transition).label,
                  assumptions=sorted(params))
