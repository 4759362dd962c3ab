"""Copying addresses, stores and channels from Omnitron (setup steps 4 to 6) as resumable background jobs.

execute() records a SyncJob and puts it on the job queue; a worker runs sync_kind(), which streams
Omnitron's pages one at a time and commits each page's upserts together with the job's progress and
cursor (resource and page). A job stopped midway, by an Omnitron failure or a killed worker, is carried
on by the next execute() from the page after the last one committed; replaying a page is harmless
because every write is an upsert by Omnitron id.

The lifecycle (queueing, the claim token, heartbeats, failing, stale takeover) is portal.runs': every
progress write is conditional on the job's claim token, so a job that was given up as stale and resumed
elsewhere stops at its next page instead of racing the new one. This module registers the "sync" kind.

Records Omnitron no longer has are found while walking a whole list: Omnitron's lists are ordered by id,
so a page of ids a..b, read in one answer, vouches for every id between a and b; the first page also
vouches for every id below it, the last for every id above it, and the gap since the previous page too
when the list's count has not moved since then (a deletion further back shifts the offsets, and a record
could slip past the boundary). Local rows in that stretch whose id the page does not list are
deactivated in one UPDATE (kinds.Copier.deactivate_missing), committed with the page and the cursor, which
remembers the last id and count, so a resumed job carries on exactly. A "changed only" job reads
modified_date__gt pages, which vouch for nothing between their ids: it never deactivates anything.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db_types import utcnow
from portal.errors import DomainError, NotFound, ValidationFailed
from portal.omnitron import OmnitronClient, OmnitronError, OmnitronNotFound, Page
from portal.outbox import service as outbox
from portal.runs import service as runs
from portal.settings import service as settings
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.sync.kinds import COPIERS, KINDS, MAX_PROBLEMS, Copier, Resource
from portal.sync.models import Channel, SyncJob

log = logging.getLogger(__name__)

KIND = "sync"
# Rows a run inserts before PostgreSQL's statistics of the table are first refreshed (then at each doubling).
ANALYZE_FIRST = 5000


class SyncAlreadyRunning(DomainError):
    """A copy of the same kind is still running; a second one would only duplicate its work."""

    code = "sync_already_running"
    http_status = 409


@dataclass(frozen=True)
class RequiredCheck:
    """Whether a kind needs copying, and why (counts are of records copied from Omnitron)."""

    kind: str
    required: bool
    reason: str
    local_count: int
    remote_count: int | None


@dataclass
class _Progress:
    """A running job's counters and cursor, written with every page."""

    total: int
    processed: int
    created: int
    updated: int
    unchanged: int
    failed: int
    cursor: dict
    problems: list[str] = field(default_factory=list)
    removed: int = 0
    notes: list[str] = field(default_factory=list)  # the current page's problems beyond its records'

    def values(self) -> dict:
        """The SyncJob columns this progress fills."""
        return {"total": self.total, "processed": self.processed, "created": self.created, "updated": self.updated,
                "unchanged": self.unchanged, "failed": self.failed, "removed": self.removed,
                "progress": {"done": self.processed, "total": self.total},
                "cursor": {**self.cursor, "problems": self.problems}, "error": "\n".join(self.problems)}


def _number(count: int) -> str:
    """A count as messages show it, with thousands separators: 12,345."""
    return f"{count:,}"


def copier_for(kind: str) -> Copier:
    """The copier of a kind. Raises ValidationFailed for an unknown kind."""
    if kind not in COPIERS:
        raise ValidationFailed(_("Unknown sync kind %(kind)r; use one of %(kinds)s.", kind=kind, kinds=", ".join(KINDS)),
                               field="kind")
    return COPIERS[kind]()


def check_filter_channels(session: Session, value: object) -> None:
    """ORDER_FILTERING's channels must be channels copied from Omnitron (by their Omnitron ids).

    Registered with the settings service at start-up (portal/wiring.py): the settings know no channels.
    """
    channel_ids = value.get("channels") if isinstance(value, dict) else None
    if not channel_ids:
        return
    known = set(session.scalars(select(Channel.omnitron_id).where(Channel.omnitron_id.in_(channel_ids))))
    missing = [c for c in channel_ids if c not in known]
    if missing:
        raise ValidationFailed(_("Unknown channel %(channel)s: copy the channels from Omnitron first (setup step 6).",
                                 channel=missing[0]), field="channels")


def _credentials(session: Session) -> tuple[str, str]:
    """The stored Omnitron username and password. Raises ValidationFailed when they are not saved or unreadable."""
    value = settings.get_value(session, settings.OMNITRON_CLIENT_SETTINGS)
    username = value.get("auth", {}).get("username") if isinstance(value, dict) else None
    try:
        password = settings.get_secret(session, settings.OMNITRON_CLIENT_SETTINGS, ("auth", "password"))
    except ValueError:
        raise ValidationFailed(_("The saved Omnitron password cannot be read with the current ENCRYPTION_KEYS; "
                                 "save it again in step 7 (OMS credentials)."), field="credentials") from None
    if not username or not password:
        raise ValidationFailed(_("Save the Omnitron username and password in step 7 (OMS credentials) first."),
                               field="credentials")
    return username, password


def make_client(session: Session, config=None, *, retries: int | None = None) -> OmnitronClient:
    """A client for the configured Omnitron with the stored credentials. Raises ValidationFailed."""
    username, password = _credentials(session)
    client = OmnitronClient.from_config(config if config is not None else current_app.config, username, password)
    if retries is not None:
        client.retries = min(client.retries, retries)
    return client


# is_required -------------------------------------------------------------------------------------------------


def check_required(session: Session, kind: str, *, client: OmnitronClient | None = None) -> RequiredCheck:
    """Whether a kind needs copying: nothing copied yet, Omnitron's counts differ, or records changed since.

    The portal's count leaves out records already deactivated because Omnitron no longer had them, so
    a record deleted in Omnitron shows as a count that differs until a copy deactivates it. Cheap: one
    grouped query here, and per resource one tiny count page and one modified-since count from
    Omnitron. Raises ValidationFailed (no credentials) and OmnitronError.
    """
    copier = copier_for(kind)
    stats = copier.local_stats(session)
    local_total = sum(count for count, _newest in stats.values())
    if local_total == 0:
        return RequiredCheck(kind, True, _("No %(records)s have been copied from Omnitron yet.",
                                           records=_(copier.noun)), 0, None)
    own = client is None
    client = client or make_client(session, retries=1)
    try:
        remote_total = 0
        mismatch = changed = ""
        for resource in copier.resources:
            count, newest = stats[resource.name]
            remote = client.count(resource.path)
            remote_total += remote
            if remote != count and not mismatch:
                mismatch = _("Omnitron has %(remote)s %(records)s; the portal has %(local)s.", remote=_number(remote),
                             records=_(resource.label), local=_number(count))
                if remote < count:
                    gone = count - remote
                    mismatch += " " + ngettext(
                        "At least %(count)s seems to have been deleted in Omnitron: a copy deactivates them here "
                        "(they are kept for what already uses them).",
                        "At least %(count)s seem to have been deleted in Omnitron: a copy deactivates them here "
                        "(they are kept for what already uses them).", gone, count=_number(gone))
            if not mismatch and not changed and newest:
                modified = client.count(resource.path, params={"modified_date__gt": newest})
                if modified:
                    changed = _("%(count)s %(records)s changed in Omnitron since the last copy.",
                                count=_number(modified), records=_(resource.label))
    finally:
        if own:
            client.close()
    reason = mismatch or changed
    if reason:
        return RequiredCheck(kind, True, reason, local_total, remote_total)
    return RequiredCheck(kind, False, _("In sync: the portal's %(count)s %(records)s match Omnitron.",
                                        count=_number(local_total), records=_(copier.noun)), local_total, remote_total)


def is_required(session: Session, kind: str, *, client: OmnitronClient | None = None) -> bool:
    """True when the kind's data is missing or out of sync with Omnitron. Raises like check_required."""
    return check_required(session, kind, client=client).required


# Starting jobs -----------------------------------------------------------------------------------------------


def latest_job(session: Session, kind: str) -> SyncJob | None:
    """The newest job of a kind, or None."""
    return session.scalars(select(SyncJob).where(SyncJob.kind == kind).order_by(SyncJob.id.desc()).limit(1)).first()


def recent_jobs(session: Session, kind: str, limit: int = 5) -> list[SyncJob]:
    """The last few jobs of a kind, newest first."""
    return list(session.scalars(select(SyncJob).where(SyncJob.kind == kind).order_by(SyncJob.id.desc())
                                .limit(limit)))


def start_job(session: Session, kind: str, *, user_id: int | None, changed_only: bool = False,
              now: datetime | None = None) -> SyncJob:
    """Record a new queued job of a kind (not yet on the queue), carrying on where an unfinished one stopped.

    An unfinished job is the newest one when it failed midway, or when it is still marked running but
    its worker went silent (stale): that one is marked failed and its cursor and counters move to the
    new job, if it was of the same sort (whole lists, or changed_only: only records modified in
    Omnitron since the newest one copied, which is quicker but cannot notice deleted records).
    Raises ValidationFailed (unknown kind, no credentials) and SyncAlreadyRunning.
    """
    copier = copier_for(kind)
    _credentials(session)
    now = now or utcnow()
    wizard.lock_step(session, kind, now)
    previous = latest_job(session, kind)
    if previous is not None:
        session.refresh(previous)
    resume: SyncJob | None = None
    stale = False
    if runs.is_live(previous):
        if not runs.is_stale(previous, now):
            session.rollback()
            raise SyncAlreadyRunning(_(
                "A copy of %(noun)s is already running (job #%(id)s, %(percent)s%% done). Wait for it to finish; "
                "this page follows its progress.", noun=_(copier.noun), id=previous.id, percent=runs.percent(previous)))
        resume, stale = previous, True
    elif previous is not None and previous.status == SyncJob.FAILED and (previous.cursor or {}).get("resource"):
        resume = previous
    job = SyncJob(kind=kind, status=SyncJob.QUEUED, task_id=runs.new_token(), started_by_id=user_id, created_at=now,
                  cursor={}, progress={}, error="")
    if changed_only:
        # The newest modified date copied per list, fixed now so a resumed job asks Omnitron the same question.
        job.cursor = {"since": {name: newest for name, (_count, newest) in copier.local_stats(session).items()}}
    carry_on = resume is not None and ("since" in (resume.cursor or {})) == changed_only
    if resume is not None and carry_on:
        job.cursor = {**(resume.cursor or {}), "resumed_from": resume.id}
        for name in ("total", "processed", "created", "updated", "unchanged", "failed", "removed"):
            setattr(job, name, getattr(resume, name))
        job.progress = {"done": job.processed, "total": job.total}
        job.error = resume.error if not stale else "\n".join((resume.cursor or {}).get("problems", []))
    session.add(job)
    session.flush()
    if resume is not None and stale:
        why = runs.stale_reason(resume)
        runs.take_over(resume, _("%(why)s; carried on as job #%(id)s.", why=why, id=job.id) if carry_on
                       else _("%(why)s; job #%(id)s replaced it.", why=why, id=job.id), now)
    step = wizard.status(session, kind).state
    if step in (SetupStep.NOT_STARTED, SetupStep.NEEDS_ATTENTION):
        wizard.mark(session, kind, SetupStep.IN_PROGRESS, user_id=user_id, commit=False,
                    note=_("Copying %(records)s from Omnitron (job #%(id)s).", records=_(copier.noun), id=job.id))
    session.commit()
    return job


def execute(session: Session, kind: str, *, user_id: int | None, changed_only: bool = False) -> SyncJob:
    """Start copying a kind from Omnitron in the background; returns the job (finished already in immediate mode).

    changed_only reads only the records modified since the last copy (see start_job). Raises
    ValidationFailed (unknown kind, no credentials) and SyncAlreadyRunning.
    """
    job = start_job(session, kind, user_id=user_id, changed_only=changed_only)
    return runs.queue(session, KIND, job)


# Running jobs ------------------------------------------------------------------------------------------------


def _save(session: Session, job_id: int, token: str, progress: _Progress, **extra) -> None:
    """Write the progress with the page's upserts and commit, then deliver the page's events.

    Raises runs.Superseded (after rolling back) when this run no longer owns the job.
    """
    runs.save_progress(session, SyncJob, job_id, token, **progress.values(), **extra)
    # The page's stock_location.* events: fan out and deliver now rather than at the next sweep.
    outbox.deliver_after_commit(session)


def _on_fail(session: Session, job: SyncJob, message: str) -> None:
    """When a job fails: its error keeps the records' problems, and its wizard step needs attention."""
    problems = (job.cursor or {}).get("problems", [])
    job.error = "\n".join([message, *problems])[:runs.MAX_ERROR]
    wizard.mark(session, job.kind, SetupStep.NEEDS_ATTENTION, user_id=job.started_by_id, commit=False,
                note=_("Copy job #%(id)s stopped: %(message)s", id=job.id, message=message))


def _fail(session: Session, job_id: int, token: str, message: str) -> None:
    """End the job as failed with a message an admin can act on; the step needs attention."""
    runs.fail(session, KIND, job_id, token, message)


def _finish(session: Session, job_id: int, token: str, progress: _Progress, copier: Copier) -> None:
    """End the job as done and mark the step: done, or needing attention when some records failed."""
    runs.finish(session, SyncJob, job_id, token, **progress.values())
    outbox.deliver_after_commit(session)
    job = session.get(SyncJob, job_id, populate_existing=True)
    if job is None:
        return  # deleted meanwhile: no step to mark
    summary = summary_text(job, copier.noun)
    if job.failed:
        wizard.mark(session, job.kind, SetupStep.NEEDS_ATTENTION, user_id=job.started_by_id,
                    note=_("%(summary)s Fix these in Omnitron and copy again: %(problems)s", summary=summary,
                           problems=" ".join(progress.problems)))
    else:
        wizard.mark(session, job.kind, SetupStep.DONE, user_id=job.started_by_id, note=summary)


def _listed_ids(records: list) -> list[int]:
    """The Omnitron ids a page lists, in its order (records without a usable id cannot match a stored row)."""
    return [r["id"] for r in records if isinstance(r, dict) and isinstance(r.get("id"), int)
            and not isinstance(r.get("id"), bool)]


def _remove_missing(session: Session, copier: Copier, resource: Resource, page: Page, progress: _Progress) -> int:
    """Deactivate the stored records of the stretch of ids this page of a whole list vouches for that it
    does not list (see the module's docstring); remembers the page's last id and the list's count in the
    cursor. Returns how many were deactivated. Not committed.
    """
    cursor = progress.cursor
    if cursor.get("removals_off") == resource.name:
        return 0
    ids = _listed_ids(page.results)
    last = cursor.get("last_id") if page.number > 1 else None
    if any(b <= a for a, b in zip(ids, ids[1:], strict=False)):
        # The range reasoning needs id order; without it nothing can be said about what is missing.
        cursor["removals_off"] = resource.name
        progress.notes.append(_("Omnitron does not list its %(records)s in id order, so %(records)s it no longer "
                                "has were not looked for (none were deactivated).", records=_(resource.label)))
        return 0
    if not ids:
        if page.number == 1 and page.count == 0 and copier.local_stats(session)[resource.name][0]:
            # An empty list where there were records is more likely a misconfigured Omnitron than a brand
            # that deleted everything: keep them, and say so.
            progress.notes.append(_("Omnitron lists no %(records)s at all, so none were deactivated here; if they "
                                    "really were all deleted, deactivate them by hand.", records=_(resource.label)))
        return 0
    if page.number == 1:
        above = None
    elif last is not None and cursor.get("listed") == page.count and ids[0] > last:
        above = last
    else:
        above = ids[0]  # the list moved since the previous page: only this page's own gaps are certain
    upto = None if page.next_page is None else ids[-1]
    cursor.update(last_id=ids[-1], listed=page.count)
    return copier.deactivate_missing(session, resource, ids, above, upto)


def _place(resource: Resource, page: int, pages: int | None) -> str:
    """Where a job was, e.g. "at districts page 3 of 6"."""
    if pages:
        return _("at %(records)s page %(page)s of %(pages)s", records=_(resource.label), page=page, pages=pages)
    return _("at %(records)s page %(page)s", records=_(resource.label), page=page)


def sync_kind(session: Session, job_id: int, *, token: str | None = None,
              client: OmnitronClient | None = None) -> SyncJob | None:
    """Run a recorded job to its end: copy its kind from Omnitron page by page, resuming from its cursor.

    Every page's upserts, counters, cursor and heartbeat are committed together. Omnitron failures
    (after the client's retries) and unexpected errors end the job as failed with a readable message,
    keeping the pages already committed; they are not raised. Returns the job, or None if it is gone.
    """
    job = session.get(SyncJob, job_id)
    if job is None:
        return None
    token = token or job.task_id
    if not runs.claim(session, SyncJob, job_id, token):
        return session.get(SyncJob, job_id, populate_existing=True)
    job = session.get(SyncJob, job_id, populate_existing=True)
    if job is None:
        return None
    copier = copier_for(job.kind)
    cursor = dict(job.cursor or {})
    page_size = int(cursor.get("page_size") or current_app.config.get("SYNC_PAGE_SIZE", 500))
    progress = _Progress(job.total, job.processed, job.created, job.updated, job.unchanged, job.failed,
                         {k: v for k, v in cursor.items() if k != "problems"}, list(cursor.get("problems", [])),
                         job.removed or 0)
    since = cursor.get("since")

    def filters(resource: Resource) -> dict | None:
        """The list's query: only records modified since the last copy in a changed-only job."""
        newest = (since or {}).get(resource.name)
        return {"modified_date__gt": newest} if newest else None

    progress.cursor["page_size"] = page_size
    where = _("before the first page")
    own = client is None
    try:
        client = client or make_client(session)
        try:
            where = _("while counting the records")
            counts = {r.name: client.count(r.path, params=filters(r)) for r in copier.resources}
            progress.total = max(sum(counts.values()), progress.processed)
            _save(session, job_id, token, progress)
            # Statistics are refreshed whenever this run has doubled what it inserted (5,000, 10,000, ...).
            inserted, analyze_at = 0, ANALYZE_FIRST
            names = [r.name for r in copier.resources]
            resume_index = names.index(cursor["resource"]) if cursor.get("resource") in names else 0
            for index, resource in enumerate(copier.resources):
                if index < resume_index or (index == resume_index and cursor.get("complete")):
                    continue
                start = int(cursor.get("page", 0)) + 1 if index == resume_index and cursor.get("resource") else 1
                pages = max(1, -(-counts[resource.name] // page_size))
                where = _place(resource, start, pages)
                copied = 0
                try:
                    for page in client.iter_pages(resource.path, page_size=page_size, start_page=start,
                                                  params=filters(resource)):
                        result = copier.apply_page(session, resource, page.results)
                        if since is None:
                            progress.removed += _remove_missing(session, copier, resource, page, progress)
                        counts[resource.name] = page.count
                        progress.total = max(sum(counts.values()), progress.processed + len(page.results))
                        progress.processed += len(page.results)
                        progress.created += result.created
                        progress.updated += result.updated
                        progress.unchanged += result.unchanged
                        progress.failed += result.failed
                        progress.problems = (progress.problems + result.problems + progress.notes)[:MAX_PROBLEMS]
                        progress.notes = []
                        progress.cursor.update(resource=resource.name, page=page.number,
                                               complete=page.next_page is None)
                        _save(session, job_id, token, progress)
                        copied += 1
                        inserted += result.created
                        if inserted >= analyze_at:
                            copier.analyze(session)
                            analyze_at *= 2
                        where = _place(resource, page.number + 1, page.pages)
                except OmnitronNotFound:
                    # Resuming past the last page (records were deleted meanwhile): the resource is done.
                    if copied or start == 1:
                        raise
                    session.rollback()
            progress.total = max(progress.total, progress.processed)
            if inserted:
                copier.analyze(session)
            _finish(session, job_id, token, progress, copier)
        finally:
            if own and client is not None:
                client.close()
    except runs.Superseded:
        log.info("sync job %s was taken over by another run; this one stops", job_id)
    except OmnitronError as exc:
        session.rollback()
        if progress.processed:
            message = _("Copying stopped %(where)s. %(error)s Pages already copied are kept: run the copy again to "
                        "carry on from there.", where=where, error=exc.message)
        else:
            message = _("Copying stopped %(where)s. %(error)s Run the copy again when Omnitron answers.",
                        where=where, error=exc.message)
        _fail(session, job_id, token, message)
    except DomainError as exc:
        session.rollback()
        _fail(session, job_id, token, exc.message)
    except Exception as exc:  # a bug or a database failure must end the job, not leave it "running"
        session.rollback()
        log.exception("sync job %s failed", job_id)
        _fail(session, job_id, token, _("Copying stopped %(where)s because of an unexpected error (%(error)s); the "
                                        "worker's log has the details. Pages already copied are kept.",
                                        where=where, error=exc.__class__.__name__))
    return session.get(SyncJob, job_id, populate_existing=True)


# Reading jobs ------------------------------------------------------------------------------------------------


def get_job(session: Session, kind: str, job_id: int | None = None) -> SyncJob | None:
    """A job of the kind by id (NotFound when it is not one), or the newest one (None when there is none)."""
    copier_for(kind)
    if job_id is None:
        return latest_job(session, kind)
    job = session.get(SyncJob, job_id)
    if job is None or job.kind != kind:
        raise NotFound(_("No %(kind)s sync job #%(id)s.", kind=kind, id=job_id))
    return job


def summary_text(job: SyncJob, noun: str | None = None) -> str:
    """One sentence on what a job did."""
    noun = noun or copier_for(job.kind).noun
    text = _("%(processed)s %(records)s read from Omnitron: %(created)s created, %(updated)s updated, "
             "%(unchanged)s unchanged, %(failed)s failed.", processed=_number(job.processed), records=_(noun),
             created=_number(job.created), updated=_number(job.updated), unchanged=_number(job.unchanged),
             failed=_number(job.failed))
    if job.removed:
        text += " " + _("%(removed)s removed: Omnitron no longer has them, so they were deactivated here (kept for "
                        "what already uses them).", removed=_number(job.removed))
    if "since" in (job.cursor or {}):
        text += " " + _("Only records changed since the last copy were read; records deleted in Omnitron are "
                        "found by a full copy.")
    return text


def where_text(job: SyncJob) -> str:
    """Which list and page a job has reached, for the progress display."""
    cursor = job.cursor or {}
    copier = copier_for(job.kind)
    labels = {r.name: r.label for r in copier.resources}
    if not cursor.get("resource"):
        return ""
    resource = cursor["resource"]
    records = _(labels[resource]) if resource in labels else resource
    return _("%(records)s, page %(page)s", records=records, page=cursor.get("page"))


def job_json(job: SyncJob | None, kind: str) -> dict:
    """A job as the API shows it; a kind never copied is status "not_started"."""
    if job is None:
        return {"job_id": None, "kind": kind, "status": "not_started", "progress": 0, "processed": 0, "total": 0,
                "created": 0, "updated": 0, "unchanged": 0, "failed": 0, "removed": 0, "changed_only": False,
                "error": "", "resumed_from": None,
                "created_at": None, "started_at": None, "heartbeat_at": None, "finished_at": None}
    cursor = job.cursor or {}

    def moment(value):
        """An ISO timestamp or None."""
        return value.isoformat() if value else None

    return {"job_id": job.id, "kind": job.kind, "status": job.status, "progress": runs.percent(job),
            "processed": job.processed, "total": job.total, "created": job.created, "updated": job.updated,
            "unchanged": job.unchanged, "failed": job.failed, "removed": job.removed or 0,
            "changed_only": "since" in cursor, "error": job.error or "",
            "resumed_from": cursor.get("resumed_from"), "created_at": moment(job.created_at),
            "started_at": moment(job.started_at), "heartbeat_at": moment(job.heartbeat_at),
            "finished_at": moment(job.finished_at)}


def _step(session: Session, job_id: int, token: str) -> None:
    """The "sync" kind's step, run by the queue task: carry the job out under its claim token."""
    sync_kind(session, job_id, token=token)


runs.register(runs.RunKind(KIND, SyncJob, step=_step, on_fail=_on_fail))
