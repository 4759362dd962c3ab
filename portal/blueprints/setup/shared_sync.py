"""The frame shared by steps 4 to 6: copy addresses, stores (stock locations) and channels from Omnitron.

Each step page shows whether a copy is needed (asked of Omnitron after the page has loaded, so a slow
Omnitron never holds the page up), a "Copy now" button that puts a job on the queue, the job's live
progress (the status panel asks for itself every second while the job runs; the server leaves the
polling trigger out once the job has ended), its summary, and the last few jobs.
"""
from __future__ import annotations

from flask import flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from portal import explain
from portal.accounts.models import User
from portal.blueprints.setup import bp
from portal.blueprints.setup.shared import frame, step_answer
from portal.errors import DomainError
from portal.extensions import db
from portal.i18n import N_
from portal.omnitron import OmnitronError
from portal.runs.service import is_live, panel_state
from portal.sync import service as sync
from portal.web import htmx_response, is_fragment_request, render_block

TEMPLATE = "setup/sync.html"


# URL segment of each kind (the wizard's URLs use hyphens) and the other way round.
SLUGS = {"addresses": "addresses", "stock_locations": "stock-locations", "channels": "channels"}


KIND_OF = {slug: kind for kind, slug in SLUGS.items()}


# Kind -> the step page's introduction, marked with N_ and translated in _context().
INTROS = {
    "addresses": N_("The four levels are copied parents first (countries, then cities, townships and districts), "
                    "so every record finds the one above it."),
    "stock_locations": N_("Copy Omnitron's stores and warehouses (stock locations) into the portal. A store already "
                          "made in the portal with the same erp_code is matched by that code, so its staff and "
                          "packages stay with it."),
    "channels": N_("Copy Omnitron's sales channels (web, mobile app, marketplaces, in-store) into the portal; "
                   "scenarios and order filtering choose from them."),
}


def _kind(slug: str) -> str:
    """The sync kind a URL names (the route's converter only lets known slugs through)."""
    return KIND_OF[slug]


def _context(kind: str, *, message: str = "", message_level: str = "error", check=None, check_error: str = "",
             check_problem=None,
             lazy_check: bool = True) -> dict:
    """What a sync step shows: the latest job and its progress, the last jobs, and the is_required check."""
    copier = sync.copier_for(kind)
    jobs = sync.recent_jobs(db.session, kind)
    job = jobs[0] if jobs else None
    # A running job silent for too long lost its worker: stop polling and offer to carry on. (A queued one
    # keeps polling with a hint that no worker seems to be running.)
    panel = panel_state(job)
    user_ids = {j.started_by_id for j in jobs if j.started_by_id}
    usernames = {}
    if user_ids:
        usernames = dict(db.session.execute(select(User.id, User.username).where(User.id.in_(user_ids))).tuples().all())
    return {
        "kind": kind, "slug": SLUGS[kind], "copier": copier, "intro": _(INTROS[kind]), "job": job, "jobs": jobs,
        "usernames": usernames, "polling": panel.polling, "stale": panel.stale,
        "percent": panel.percent, "where": sync.where_text(job) if is_live(job) else "",
        "waiting_for_worker": panel.waiting_for_worker, "summary": sync.summary_text,
        "message": message, "message_level": message_level, "check": check, "check_error": check_error,
        "check_problem": check_problem,
        "lazy_check": lazy_check,
    }


def _respond(kind: str, blocks: tuple[str, ...], *, http_status: int = 200, toast: tuple[str, str] | None = None,
             **context):
    """The whole step page for a normal request; for htmx the named blocks (later ones swapped out of band)."""
    data = _context(kind, **context)
    message, level = toast or (None, "success")
    if not is_fragment_request():
        return step_answer(TEMPLATE, kind, code=http_status, toast=message, level=level, oob=False, **data)
    extra = frame(kind)
    body = "".join(render_block(TEMPLATE, block, oob=index > 0, **extra, **data)
                   for index, block in enumerate(blocks))
    if not data["polling"] and "sync_status" in blocks:
        # The job has ended: the step's state and the job list change with it, and the "is a copy
        # needed?" panel asks Omnitron again.
        if "sync_jobs" not in blocks:
            body += render_block(TEMPLATE, "sync_jobs", oob=True, **extra, **data)
        body += render_block(TEMPLATE, "sync_required", **extra, **{**data, "oob": True, "lazy_check": True})
        body += render_block(TEMPLATE, "step_state_oob", **extra, **data)
    return htmx_response(body, http_status, toast=message, level=level)


def _step(kind: str):
    """A sync step's page; an htmx request gets the status panel."""
    return _respond(kind, ("sync_status",))


@bp.get("/<any(addresses, 'stock-locations', channels):slug>/required")
def sync_required(slug: str):
    """Ask Omnitron now whether this kind needs copying (loaded by the page after it has shown)."""
    kind = _kind(slug)
    try:
        check = sync.check_required(db.session, kind)
        return _respond(kind, ("sync_required",), check=check, lazy_check=False)
    except OmnitronError as exc:
        return _respond(kind, ("sync_required",), check_error=exc.message, check_problem=explain.omnitron(exc),
                        lazy_check=False)
    except DomainError as exc:
        return _respond(kind, ("sync_required",), check_error=exc.message, lazy_check=False)


@bp.get("/<any(addresses, 'stock-locations', channels):slug>/status")
def sync_status(slug: str):
    """The latest job's progress and summary; the page polls it every second while the job runs."""
    return _respond(_kind(slug), ("sync_status",))


@bp.post("/<any(addresses, 'stock-locations', channels):slug>/copy")
def sync_copy(slug: str):
    """Start copying this kind from Omnitron on the job queue ("Copy now")."""
    kind = _kind(slug)
    try:
        job = sync.execute(db.session, kind, user_id=current_user.id)
    except sync.SyncAlreadyRunning as exc:
        return _respond(kind, ("sync_status",), http_status=409, message=exc.message, message_level="info")
    except DomainError as exc:
        db.session.rollback()
        return _respond(kind, ("sync_status",), http_status=422, message=exc.message)
    noun = sync.copier_for(kind).noun
    if job.status == job.FAILED:
        text, level = _("Copying %(what)s failed (job #%(id)s).", what=noun, id=job.id), "error"
    elif job.status == job.DONE:
        text, level = _("Copied %(what)s (job #%(id)s).", what=noun, id=job.id), "success"
    else:
        text, level = _("Copying %(what)s started (job #%(id)s).", what=noun, id=job.id), "success"
    if not is_fragment_request():
        flash(text, level)
        return redirect(url_for(f"setup.{kind}"), code=303)
    return _respond(kind, ("sync_status", "sync_jobs"), toast=(text, level))
