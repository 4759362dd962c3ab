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
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal import crypto
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


def encode_body(message: OutboxMessage) -> bytes:
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


def deliver_webhook(session: Session, message: OutboxMessage, lease: datetime) -> outbox.Outcome:
    """Deliver a claimed webhook message once and record the attempt and the outcome (commits).

    portal.wiring registers this as the outbox's sender for kind "webhook".
    """
    message_id, attempt, msg_uuid, event_type = message.id, message.attempts, message.uuid, message.event_type
    subscription = session.get(WebhookSubscription, message.subscription_id) if message.subscription_id else None
    is_test = service.is_trial(message)  # a test event or a sample: one attempt, no retries
    if subscription is None or (not subscription.is_active and not is_test):
        why = (_("the subscription was deleted") if subscription is None else
               _("the subscription is switched off (%(reason)s)",
                 reason=subscription.disabled_reason or _("no reason given")))
        outbox.finish(session, message_id, lease, status=OutboxMessage.DEAD, last_error=_("Not sent: %(why)s", why=why))
        session.commit()
        return outbox.Outcome(message_id, OutboxMessage.DEAD)
    subscription_id = subscription.id
    config = subscription.retry_countdown_config or retry.DEFAULT_CONFIG
    url, extra = subscription.target_url, dict(subscription.additional_headers or {})
    carries_secret = bool(message.body_encrypted)
    # The inspector's exact URL is the one loopback address a delivery may reach (development and the demo).
    to_inspector = inspector.is_inspector_url(url, current_app.config)
    try:
        secret = crypto.decrypt(subscription.secret_encrypted)
        body = encode_body(message)
    except ValueError as exc:  # a key was dropped from ENCRYPTION_KEYS before rotation
        outbox.finish(session, message_id, lease, status=OutboxMessage.DEAD, last_error=_("Not sent: %(why)s", why=exc))
        session.commit()
        return outbox.Outcome(message_id, OutboxMessage.DEAD)
    session.commit()  # hold no transaction while waiting for the receiver

    config_app = current_app.config
    started_at = utcnow()
    result = post(url, body, request_headers(extra, secret, msg_uuid, body),
                  timeout=float(config_app.get("WEBHOOK_TIMEOUT_SECONDS", 10)),
                  allow_private=bool(config_app.get("WEBHOOK_ALLOW_PRIVATE_TARGETS")) or to_inspector)
    succeeded = result.status_code is not None and 200 <= result.status_code < 300
    # A receiver may echo what it got: an excerpt of the answer to a body that carried a pickup code (the
    # Extension-app mode's encrypted envelope) is never stored, as brand managers read the delivery log.
    excerpt = result.excerpt if not carries_secret else (_("(not kept: this delivery carried a pickup code)")
                                                        if result.excerpt else "")

    def record_attempt() -> None:
        """Log the attempt (not committed)."""
        session.add(DeliveryAttempt(subscription_id=subscription_id, message_id=message_id, attempt=attempt,
                                    started_at=started_at, status_code=result.status_code,
                                    duration_ms=result.duration_ms, response_excerpt=excerpt,
                                    error=result.error[:2000], succeeded=succeeded))

    now = utcnow()
    if succeeded:
        def record_sent() -> None:
            """Log the attempt and mark the message sent (commits); the code-bearing body (extension mode) is not
            kept once the receiver has it."""
            record_attempt()
            if outbox.finish(session, message_id, lease, status=OutboxMessage.SENT, sent_at=now, last_error="",
                             body_encrypted=None):
                session.execute(update(WebhookSubscription)
                                .where(WebhookSubscription.id == subscription_id,
                                       WebhookSubscription.consecutive_failures != 0)
                                .values(consecutive_failures=0).execution_options(synchronize_session=False))
            session.commit()

        outbox.record_after_send(session, lease, record_sent)
        log.info("webhook %s (%s) delivered to subscription %s in %s ms", msg_uuid, event_type, subscription_id,
                 result.duration_ms)
        return outbox.Outcome(message_id, OutboxMessage.SENT)

    record_attempt()
    log.warning("webhook %s (%s) to subscription %s failed (attempt %s): %s", msg_uuid, event_type,
                subscription_id, attempt, result.error)
    if result.status_code == 410:
        ours = outbox.finish(session, message_id, lease, status=OutboxMessage.DEAD, last_error=result.error)
        if ours:
            service.disable(session, subscription_id,
                            _("Switched off at %(time)s UTC: the receiver answered 410 Gone, "
                              "meaning it no longer accepts these events.", time=now.strftime("%Y-%m-%d %H:%M")))
        session.commit()
        return outbox.Outcome(message_id, OutboxMessage.DEAD)
    limit = 1 if is_test else retry.max_attempts(config)
    if attempt >= limit:
        ours = outbox.finish(session, message_id, lease, status=OutboxMessage.DEAD, last_error=result.error)
        if ours and not is_test:
            _count_dead_letter(session, subscription_id, result.error, now)
        session.commit()
        return outbox.Outcome(message_id, OutboxMessage.DEAD)
    delay = retry.next_delay(config, attempt)
    outbox.finish(session, message_id, lease, status=OutboxMessage.FAILED, last_error=result.error,
                  next_attempt_at=now + timedelta(seconds=delay))
    session.commit()
    return outbox.Outcome(message_id, OutboxMessage.FAILED, delay)


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
