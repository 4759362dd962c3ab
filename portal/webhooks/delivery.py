"""Delivering one claimed webhook message: sign, POST, log the attempt, then sent / retry / dead.

A 2xx answer is success. Anything else (or no answer within WEBHOOK_TIMEOUT_SECONDS) is a failed
attempt: the message is retried after the subscription's countdown, and dead-lettered after its
max_attempts. Redirects are never followed (a 3xx is a failure). A 410 switches the subscription off
at once; WEBHOOK_DISABLE_AFTER_FAILURES dead-lettered messages in a row switch it off too.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

import requests
from flask import Flask, current_app
from flask_babel import gettext as _
from sqlalchemy import Table, insert, select, update
from sqlalchemy.orm import Session

from portal import crypto, outbound
from portal.db_types import utcnow
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.webhooks import inspector, retry, service, signing, ssrf
from portal.webhooks.models import DeliveryAttempt, WebhookSubscription

log = logging.getLogger(__name__)

EXCERPT_CHARS = 500
_READ_LIMIT = 64 * 1024  # read at most this much of an answer; only the excerpt is kept
_local = threading.local()


@dataclass
class HttpResult:
    """What one POST got: a status code and the start of the answer, or an error."""

    status_code: int | None
    excerpt: str
    error: str
    duration_ms: int


def _http(allow_private: bool) -> requests.Session:
    """This thread's delivery session (kept so connections to a receiver are reused)."""
    key = "guarded" if not allow_private else "open"
    session = getattr(_local, key, None)
    if session is None:
        session = ssrf.guarded_session(allow_private)
        setattr(_local, key, session)
    return session


def encode_body(message: OutboxMessage | outbox.Claimed) -> bytes:
    """The exact bytes sent (and signed): the encrypted envelope when there is one, else the payload."""
    if message.body_encrypted:
        return crypto.decrypt(message.body_encrypted).encode()
    return json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False).encode()


def request_headers(extra: dict | None, secret: str, msg_id: str, body: bytes,
                    timestamp: int | None = None) -> dict[str, str]:
    """The headers of a delivery: the subscription's own, then ours (which they cannot replace)."""
    headers = {name: str(value) for name, value in (extra or {}).items()
               if name.lower() not in service.RESERVED_HEADERS}
    headers["Content-Type"] = "application/json"
    headers["User-Agent"] = current_app.config.get("WEBHOOK_USER_AGENT", "OMS-Portal-Webhooks/1.0")
    headers.update(signing.headers(secret, msg_id, body, timestamp))
    return headers


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool) -> HttpResult:
    """POST once, never following redirects; errors come back in the result, never raised (an unexpected one
    too: it is logged and becomes a failed attempt, so the message is retried and dead-lettered as usual)."""
    started = time.perf_counter()

    def took() -> int:
        """Milliseconds since the request started."""
        return int((time.perf_counter() - started) * 1000)

    # requests' timeout bounds each read; the deadline bounds the whole send, so a receiver dripping its answer
    # cannot hold a worker (or outlive the claim's lease).
    with outbound.deadline(timeout) as send:
        try:
            response = _http(allow_private).post(url, data=body, headers=headers, timeout=(timeout, timeout),
                                                  allow_redirects=False, stream=True)
            try:
                content = b""
                for chunk in response.iter_content(8192):
                    content += chunk
                    if len(content) >= _READ_LIMIT:
                        break
            finally:
                response.close()
        except Exception as exc:  # noqa: BLE001 - sorted out below, after the deadline is off
            failure: Exception | None = exc
        else:
            failure = None
    if send.expired:
        return HttpResult(None, "", _("No answer within %(seconds)g s (timeout).", seconds=timeout), took())
    try:
        if failure is not None:
            raise failure
        excerpt = content.decode(response.encoding or "utf-8", errors="replace")[:EXCERPT_CHARS]
        status = response.status_code
        error = ""
        if 300 <= status < 400:
            where = response.headers.get("Location", "")
            error = (_("The receiver answered %(status)s (a redirect to %(where)s); redirects are not followed: "
                       "change the target URL to the final address.", status=status, where=where) if where else
                     _("The receiver answered %(status)s (a redirect); redirects are not followed: "
                       "change the target URL to the final address.", status=status))
        elif not 200 <= status < 300:
            error = (_("The receiver answered %(status)s Gone: it no longer wants these events.", status=status)
                     if status == 410 else _("The receiver answered %(status)s.", status=status))
        return HttpResult(status, excerpt, error, took())
    except ssrf.BlockedAddress as exc:
        return HttpResult(None, "", str(exc), took())
    except requests.exceptions.ConnectTimeout:
        return HttpResult(None, "", _("Could not connect within %(seconds)g s.", seconds=timeout), took())
    except (requests.exceptions.ReadTimeout, requests.exceptions.Timeout):
        return HttpResult(None, "", _("No answer within %(seconds)g s (timeout).", seconds=timeout), took())
    except requests.exceptions.ConnectionError as exc:
        return HttpResult(None, "", _("Could not connect: %(reason)s", reason=_reason(exc)), took())
    except requests.exceptions.RequestException as exc:
        return HttpResult(None, "", _("Request failed: %(reason)s", reason=_reason(exc)), took())
    except Exception as exc:  # noqa: BLE001 - anything else is a failed attempt that follows the retry rules
        log.exception("webhook delivery to %s failed unexpectedly", url)
        return HttpResult(None, "", _("The delivery failed unexpectedly (%(kind)s: %(reason)s).",
                                      kind=exc.__class__.__name__, reason=_reason(exc)), took())


def _reason(exc: Exception) -> str:
    """The innermost, shortest useful text of a requests/urllib3 error."""
    inner: BaseException = exc
    while (deeper := inner.__cause__ or inner.__context__) is not None:
        inner = deeper
    text = str(inner) or inner.__class__.__name__
    return text[:300]


@dataclass
class _Job:
    """One claimed message ready to go: where, what (the exact bytes and headers), and what to record."""

    message_id: int
    attempt: int
    msg_uuid: str
    event_type: str
    subscription_id: int
    is_test: bool
    config: dict
    url: str
    body: bytes
    headers: dict[str, str]
    carries_secret: bool
    allow_private: bool
    timeout: float
    started_at: datetime | None = None
    result: HttpResult | None = None


Message = OutboxMessage | outbox.Claimed


def _prepare(message: Message, subscription: WebhookSubscription | None) -> _Job | str:
    """The message's job, or why it is not sent at all (its subscription is gone or off, a key is missing)."""
    is_test = service.is_trial(message)  # a test event or a sample: one attempt, no retries
    if subscription is None or (not subscription.is_active and not is_test):
        why = (_("the subscription was deleted") if subscription is None else
               _("the subscription is switched off (%(reason)s)",
                 reason=subscription.disabled_reason or _("no reason given")))
        return _("Not sent: %(why)s", why=why)
    config_app = current_app.config
    try:
        secret = crypto.decrypt(subscription.secret_encrypted)
        body = encode_body(message)
    except ValueError as exc:  # a key was dropped from ENCRYPTION_KEYS before rotation
        return _("Not sent: %(why)s", why=exc)
    url = subscription.target_url
    # The inspector's exact URL is the one loopback address a delivery may reach (development and the demo).
    allow_private = bool(config_app.get("WEBHOOK_ALLOW_PRIVATE_TARGETS")) or inspector.is_inspector_url(url, config_app)
    return _Job(message.id, message.attempts, message.uuid, message.event_type, subscription.id, is_test,
                subscription.retry_countdown_config or retry.DEFAULT_CONFIG, url, body,
                request_headers(dict(subscription.additional_headers or {}), secret, message.uuid, body),
                bool(message.body_encrypted), allow_private, float(config_app.get("WEBHOOK_TIMEOUT_SECONDS", 10)))


def _send(job: _Job) -> None:
    """POST one job and keep what it got (post() never raises)."""
    job.started_at = utcnow()
    job.result = post(job.url, job.body, job.headers, timeout=job.timeout, allow_private=job.allow_private)


def _send_in_app(app: Flask, job: _Job) -> None:
    """_send on a pool thread, inside the worker's app (post() reads the app's config and translations)."""
    with app.app_context():
        _send(job)


def _pool(size: int) -> ThreadPoolExecutor:
    """This thread's sending pool (each of its threads keeps its own keep-alive connections to each receiver)."""
    pool: ThreadPoolExecutor | None = getattr(_local, "pool", None)
    if pool is None or getattr(_local, "pool_size", 0) != size:
        if pool is not None:
            pool.shutdown(wait=False)
        pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="webhook-send")
        _local.pool, _local.pool_size = pool, size
    return pool


def send_all(jobs: list[_Job]) -> None:
    """Send the jobs at once, each on its own thread of this thread's pool (one alone: right here).

    The pool has a thread per job of a full batch, so a batch is one round of concurrent requests, each bounded by
    WEBHOOK_TIMEOUT_SECONDS: the batch ends well inside its lease.
    """
    if len(jobs) == 1:
        _send(jobs[0])
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]  # werkzeug's proxy
    pool = _pool(max(outbox.batch_size(), len(jobs)))
    for future in [pool.submit(_send_in_app, app, job) for job in jobs]:
        future.result()


def _excerpt(job: _Job, result: HttpResult) -> str:
    """What the delivery log keeps of the answer.

    A receiver may echo what it got: an excerpt of the answer to a body that carried a pickup code (the
    Extension-app mode's encrypted envelope) is never stored, as brand managers read the delivery log.
    """
    if not job.carries_secret:
        return result.excerpt
    return _("(not kept: this delivery carried a pickup code)") if result.excerpt else ""


def _succeeded(result: HttpResult) -> bool:
    """A 2xx answer."""
    return result.status_code is not None and 200 <= result.status_code < 300


_INSERT_ATTEMPTS = insert(cast(Table, DeliveryAttempt.__table__))


def _record(session: Session, jobs: list[_Job], lease: datetime) -> list[outbox.Outcome]:
    """Log every job's attempt and store its outcome if the claim still holds, in one transaction (commits).

    Successes: one UPDATE for all; the failure counts of their subscriptions go back to 0. Failures: retried after
    the subscription's countdown, dead after its max_attempts (a test or a sample after one), and a 410 switches the
    subscription off at once.
    """
    now = utcnow()
    rows = []
    for job in jobs:
        assert job.result is not None and job.started_at is not None
        result = job.result
        rows.append({"subscription_id": job.subscription_id, "message_id": job.message_id, "attempt": job.attempt,
                     "started_at": job.started_at, "status_code": result.status_code,
                     "duration_ms": result.duration_ms, "response_excerpt": _excerpt(job, result),
                     "error": result.error[:2000], "succeeded": _succeeded(result)})
    session.execute(_INSERT_ATTEMPTS, rows)
    outcomes = []
    sent = [job for job in jobs if job.result is not None and _succeeded(job.result)]
    if sent:
        ours = set(session.scalars(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([job.message_id for job in sent]),
                   OutboxMessage.status == OutboxMessage.SENDING, OutboxMessage.lease_until == lease)
            .values(status=OutboxMessage.SENT, sent_at=now, last_error="", body_encrypted=None, lease_until=None)
            .returning(OutboxMessage.id).execution_options(synchronize_session=False)))
        recovered = sorted({job.subscription_id for job in sent if job.message_id in ours})
        if recovered:
            session.execute(update(WebhookSubscription)
                            .where(WebhookSubscription.id.in_(recovered), WebhookSubscription.consecutive_failures != 0)
                            .values(consecutive_failures=0).execution_options(synchronize_session=False))
        outcomes += [outbox.Outcome(job.message_id, OutboxMessage.SENT) for job in sent if job.message_id in ours]
    for job in jobs:
        assert job.result is not None
        if not _succeeded(job.result):
            outcomes.append(_record_failure(session, job, job.result, lease, now))
    session.commit()
    return outcomes


def _record_failure(session: Session, job: _Job, result: HttpResult, lease: datetime,
                    now: datetime) -> outbox.Outcome:
    """Store a failed attempt's outcome (not committed): retry later, or dead (410: the subscription off too)."""
    if result.status_code == 410:
        if outbox.finish(session, job.message_id, lease, status=OutboxMessage.DEAD, last_error=result.error):
            service.disable(session, job.subscription_id,
                            _("Switched off at %(time)s UTC: the receiver answered 410 Gone, "
                              "meaning it no longer accepts these events.", time=now.strftime("%Y-%m-%d %H:%M")))
        return outbox.Outcome(job.message_id, OutboxMessage.DEAD)
    limit = 1 if job.is_test else retry.max_attempts(job.config)
    if job.attempt >= limit:
        ours = outbox.finish(session, job.message_id, lease, status=OutboxMessage.DEAD, last_error=result.error)
        if ours and not job.is_test:
            _count_dead_letter(session, job.subscription_id, result.error, now)
        return outbox.Outcome(job.message_id, OutboxMessage.DEAD)
    delay = retry.next_delay(job.config, job.attempt)
    if not outbox.finish(session, job.message_id, lease, status=OutboxMessage.FAILED, last_error=result.error,
                         next_attempt_at=now + timedelta(seconds=delay)):
        return outbox.Outcome(job.message_id, OutboxMessage.SENDING)  # another worker took over: it retries
    return outbox.Outcome(job.message_id, OutboxMessage.FAILED, delay)


def _log(jobs: list[_Job]) -> None:
    """One log line per delivery (info when delivered, warning when not)."""
    for job in jobs:
        result = job.result
        assert result is not None
        if _succeeded(result):
            log.info("webhook %s (%s) delivered to subscription %s in %s ms", job.msg_uuid, job.event_type,
                     job.subscription_id, result.duration_ms)
        else:
            log.warning("webhook %s (%s) to subscription %s failed (attempt %s): %s", job.msg_uuid, job.event_type,
                        job.subscription_id, job.attempt, result.error)


def _deliver(session: Session, messages: list[Message], lease: datetime) -> list[outbox.Outcome]:
    """Deliver claimed messages (one lease) once each and record every attempt and outcome; commits."""
    wanted = {message.subscription_id for message in messages if message.subscription_id}
    subscriptions = ({sub.id: sub for sub in session.scalars(
        select(WebhookSubscription).where(WebhookSubscription.id.in_(wanted)))} if wanted else {})
    outcomes, jobs = [], []
    for message in messages:
        prepared = _prepare(message, subscriptions.get(message.subscription_id or 0))
        if isinstance(prepared, str):
            if outbox.finish(session, message.id, lease, status=OutboxMessage.DEAD, last_error=prepared):
                outcomes.append(outbox.Outcome(message.id, OutboxMessage.DEAD))
        else:
            jobs.append(prepared)
    session.commit()  # hold no transaction while waiting for the receivers
    if not jobs:
        return outcomes
    send_all(jobs)
    _log(jobs)
    # The messages went out: their outcomes are written even if the database blinks (else they would go out again).
    return outcomes + outbox.record_after_send(session, lease, lambda: _record(session, jobs, lease))


def deliver_webhook(session: Session, message: OutboxMessage, lease: datetime) -> outbox.Outcome:
    """Deliver a claimed webhook message once and record the attempt and the outcome (commits).

    portal.wiring registers this as the outbox's sender for kind "webhook".
    """
    message_id = message.id
    outcomes = _deliver(session, [message], lease)
    return outcomes[0] if outcomes else outbox.Outcome(message_id, OutboxMessage.SENDING)


def deliver_webhooks(session: Session, batch: list[outbox.Claimed], lease: datetime) -> list[outbox.Outcome]:
    """Deliver a claimed batch of webhook messages at once (concurrent POSTs, one keep-alive session per sending
    thread and receiver) and record all their attempts and outcomes in one transaction (commits).

    portal.wiring registers this as the outbox's batch sender for kind "webhook".
    """
    return _deliver(session, list(batch), lease)


def _count_dead_letter(session: Session, subscription_id: int, error: str, now: datetime) -> None:
    """Count one more dead-lettered message in a row; switch the subscription off at the limit (not committed)."""
    session.execute(update(WebhookSubscription).where(WebhookSubscription.id == subscription_id)
                    .values(consecutive_failures=WebhookSubscription.consecutive_failures + 1)
                    .execution_options(synchronize_session=False))
    count = session.scalar(select(WebhookSubscription.consecutive_failures)
                           .where(WebhookSubscription.id == subscription_id))
    limit = int(current_app.config.get("WEBHOOK_DISABLE_AFTER_FAILURES", 5))
    if count is not None and limit > 0 and count >= limit:
        service.disable(session, subscription_id,
                        _("Switched off at %(time)s UTC after %(count)s deliveries in a row failed "
                          "every attempt. Last error: %(error)s", time=now.strftime("%Y-%m-%d %H:%M"), count=count,
                          error=error))
