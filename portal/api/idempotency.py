"""Idempotency-Key support: a retried request gets the first answer instead of running again.

The record for (user, key) is inserted and committed before the command runs, so the unique
constraint decides which of two racing requests runs; the other sees the record and waits (409).
Answers that say "try again" (409, 429, 5xx) are not kept, so a retry with the same key can succeed.
"""
from __future__ import annotations

import hashlib
import json
import logging
from datetime import timedelta
from functools import wraps
from typing import cast

from flask import Response, request
from flask_babel import gettext as _
from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.api.auth import caller
from portal.api.errors import domain_error_response
from portal.db_types import utcnow
from portal.errors import ConcurrentChange, DomainError, ValidationFailed
from portal.extensions import db
from portal.idempotency.models import IdempotencyRecord

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# After this long a key may be used for a new request.
KEY_LIFETIME = timedelta(hours=24)
# A request still "in progress" after this long died (worker killed): another may take the key over.
STALE_AFTER = timedelta(minutes=2)
# Statuses that invite a retry; keeping them would replay the failure forever.
_NOT_KEPT = {409, 429}
# Bodies longer than this are not kept (command answers are a few hundred bytes).
_MAX_BODY = 4000


class IdempotencyKeyReused(DomainError):
    """The key was already used for a different request."""

    code = "idempotency_key_reused"
    http_status = 422


class IdempotencyInProgress(ConcurrentChange):
    """A request with the same key is still running."""

    code = "idempotency_in_progress"


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of method, path and body; JSON bodies are compared by content, not by spacing or key order."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, RecursionError):
        canonical = body
    return hashlib.sha256(method.upper().encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


def _in_progress() -> str:
    """The message for a key whose first request has not answered yet."""
    return _("A request with this %(header)s is still being processed. Retry in a moment.", header=HEADER)


def begin(session: Session, user_id: int, key: str, fingerprint: str) -> int | IdempotencyRecord:
    """Claim (user, key) for a new request and return the record's id, or return the finished record.

    Raises IdempotencyKeyReused when the key was used for another request and IdempotencyInProgress
    while the first request with this key is still running.
    """
    for _attempt in range(3):
        now = utcnow()
        record = IdempotencyRecord(user_id=user_id, key=key, request_fingerprint=fingerprint,
                                   status_code=None, response_body="", created_at=now)
        session.add(record)
        try:
            session.flush()
            record_id = record.id
            session.commit()
            return record_id
        except IntegrityError:
            session.rollback()
        existing = session.scalar(select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key))
        if existing is None:
            continue  # the other request failed and gave the key back
        if existing.created_at < now - KEY_LIFETIME:
            _delete_if_unchanged(session, existing)
            continue
        if existing.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused(
                _("The %(header)s was already used for a different request. Use a new key for a new request.",
                  header=HEADER), field=HEADER)
        if existing.status_code is None:
            if existing.created_at < now - STALE_AFTER and _take_over(session, existing, now):
                return existing.id
            raise IdempotencyInProgress(_in_progress(), field=HEADER)
        return existing
    raise IdempotencyInProgress(_in_progress(), field=HEADER)


def _delete_if_unchanged(session: Session, record: IdempotencyRecord) -> None:
    """Delete an expired record unless another request replaced it meanwhile."""
    session.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.id == record.id, IdempotencyRecord.created_at == record.created_at))
    session.commit()


def _take_over(session: Session, record: IdempotencyRecord, now) -> bool:
    """Claim a stale in-progress record; only one of several requests doing this at once wins."""
    claimed = cast(CursorResult, session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record.id, IdempotencyRecord.created_at == record.created_at,
               IdempotencyRecord.status_code.is_(None))
        .values(created_at=now)
        .execution_options(synchronize_session=False)
    )).rowcount
    session.commit()
    return claimed == 1


def finish(session: Session, record_id: int, status_code: int, body: str) -> None:
    """Keep the answer for replays, or give the key back when the answer invites a retry."""
    session.rollback()  # whatever the request left unfinished is not ours to commit
    if status_code >= 500 or status_code in _NOT_KEPT or len(body) > _MAX_BODY:
        session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record_id))
    else:
        session.execute(update(IdempotencyRecord).where(IdempotencyRecord.id == record_id)
                        .values(status_code=status_code, response_body=body)
                        .execution_options(synchronize_session=False))
    session.commit()


def purge_expired(session: Session) -> int:
    """Delete records older than KEY_LIFETIME (for a periodic job); returns how many went."""
    deleted = cast(CursorResult, session.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.created_at < utcnow() - KEY_LIFETIME))).rowcount
    session.commit()
    return deleted


def replay(record: IdempotencyRecord) -> Response:
    """The stored answer, marked as a replay."""
    response = Response(record.response_body, status=record.status_code,
                        mimetype="application/json" if record.response_body else None)
    response.headers[REPLAYED_HEADER] = "true"
    return response


def idempotent(view):
    """Honour the Idempotency-Key header on a view; domain errors become answers that are kept too."""
    @wraps(view)
    def wrapped(*args, **kwargs):
        """Replay, refuse or run the view and keep its answer."""
        key = request.headers.get(HEADER)
        if key is None:
            return view(*args, **kwargs)
        key = key.strip()
        if not key or len(key) > MAX_KEY_LENGTH:
            raise ValidationFailed(_("%(header)s must be 1 to %(limit)s characters.", header=HEADER,
                                     limit=MAX_KEY_LENGTH), field=HEADER)
        fingerprint = request_fingerprint(request.method, request.path, request.get_data())
        user_id = caller().user_id
        assert user_id is not None  # the blueprint refused the request without a valid token
        claimed = begin(db.session, user_id, key, fingerprint)
        if isinstance(claimed, IdempotencyRecord):
            return replay(claimed)
        try:
            try:
                response = view(*args, **kwargs)
            except DomainError as error:
                response = domain_error_response(error)
        except BaseException:
            try:
                finish(db.session, claimed, 500, "")
            except Exception:  # the original error matters more than the bookkeeping
                log.exception("could not release %s %r", HEADER, key)
            raise
        if not isinstance(response, Response):
            raise TypeError("idempotent views must return a Response")
        finish(db.session, claimed, response.status_code, response.get_data(as_text=True))
        return response
    return wrapped
