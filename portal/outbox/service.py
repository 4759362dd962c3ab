"""The outbox: messages written in the same transaction as the change that causes them, sent after commit.

Kinds: "sms" (a text to a customer), "event" (the record of something that happened, see
portal.webhooks.events) and "webhook" (one event for one subscription). An event that some
subscription wants is written "pending"; after the commit a worker fans it out (fan_out) into its
webhook messages in one transaction and marks it sent. After the transaction commits,
deliver_after_commit() hands what it wrote to the dispatcher (the job queue, portal.outbox.tasks); a
worker claims each message with a conditional UPDATE and a lease, sends it, and records the outcome. A
worker killed mid-send leaves a lease that runs out; the every-minute sweep then queues the message
again (and fans out any event left pending), so nothing is lost and delivery is at least once.

Kinds with a batch sender (webhooks) are delivered in batches too (drain): one UPDATE ... RETURNING
claims up to a batch of due messages under one lease (PostgreSQL skips rows another worker has locked,
SQLite has one writer) and returns what the sender needs, the sender delivers them at once and records
every outcome in one transaction. A killed worker's batch is a set of leases that run out like any other.

The outbox is infrastructure: it knows no SMS provider and no webhook subscription. The channels
register themselves at start-up (portal.wiring): a sender per deliverable kind (register_sender), the
lookup of an event's recipients (register_recipients) and the dispatcher that queues deliveries
(register_dispatcher).
"""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import Table, and_, bindparam, event, insert, or_, select, update
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from portal import crypto
from portal.db_types import rowcount, utcnow
from portal.outbox.models import OutboxMessage, new_uuid

log = logging.getLogger(__name__)

SMS = "sms"
EVENT = "event"
WEBHOOK = "webhook"
DELIVERABLE = (SMS, WEBHOOK)
# session.info keys: messages (ids) and events with webhook messages (uuids) written in the current
# transaction, to queue once it has committed.
_WRITTEN = "outbox_written"
_WRITTEN_EVENTS = "outbox_written_events"
# The sweep leaves just-due messages to the task queued at commit (or at the retry time) for this long.
SWEEP_GRACE = timedelta(seconds=30)


@dataclass
class Outcome:
    """What one delivery attempt did: the message's new status, and when to try again (seconds), if ever."""

    message_id: int
    status: str
    retry_in: float | None = None


Sender = Callable[[Session, OutboxMessage, datetime], Outcome]
"""Delivers one claimed message (the lease is the claim's token), records the outcome with finish(), commits."""


@dataclass
class Claimed:
    """A message claimed in a batch (claim_batch): what its sender needs, returned by the claiming UPDATE itself."""

    id: int
    uuid: str
    kind: str
    event_type: str
    subscription_id: int | None
    package_id: int | None
    payload: dict
    body_encrypted: str | None
    attempts: int


BatchSender = Callable[[Session, list[Claimed], datetime], list[Outcome]]
"""Delivers claimed messages of one kind at once (they share one lease), records every outcome with finish(),
commits; one Outcome per message whose outcome it recorded."""
Recipients = Callable[[Session, str, datetime], list[int]]
"""The subscriptions that receive an event: (session, event type, when it happened) -> subscription ids."""
Dispatcher = Callable[[list[int], list[str]], None]
"""Queues the delivery of committed messages (ids) and the fan-out of committed events (uuids)."""


@dataclass
class Channels:
    """What the outbox delivers through, filled at start-up by portal.wiring."""

    senders: dict[str, Sender] = field(default_factory=dict)
    batch_senders: dict[str, BatchSender] = field(default_factory=dict)
    recipients: Recipients | None = None
    dispatcher: Dispatcher | None = None


CHANNELS = Channels()


class NotWired(RuntimeError):
    """A channel the outbox needs was never registered (portal.wiring.wire() did not run)."""


def register_sender(kind: str, sender: Sender) -> None:
    """Deliver messages of this kind with sender; registering again replaces the sender."""
    if kind not in DELIVERABLE:
        raise ValueError(f"{kind!r} is not a deliverable outbox kind ({', '.join(DELIVERABLE)})")
    CHANNELS.senders[kind] = sender


def register_batch_sender(kind: str, sender: BatchSender) -> None:
    """Deliver due messages of this kind in batches with sender (drain); registering again replaces it."""
    if kind not in DELIVERABLE:
        raise ValueError(f"{kind!r} is not a deliverable outbox kind ({', '.join(DELIVERABLE)})")
    CHANNELS.batch_senders[kind] = sender


def register_recipients(recipients: Recipients) -> None:
    """Look up who receives an event (the fan-out) with recipients."""
    CHANNELS.recipients = recipients


def register_dispatcher(dispatcher: Dispatcher) -> None:
    """Queue committed messages and events with dispatcher."""
    CHANNELS.dispatcher = dispatcher


def _recipients() -> Recipients:
    """The registered recipients lookup; raises NotWired."""
    if CHANNELS.recipients is None:
        raise NotWired("no recipients lookup is registered for outbox events; call portal.wiring.wire()")
    return CHANNELS.recipients


def _dispatcher() -> Dispatcher:
    """The registered dispatcher; raises NotWired."""
    if CHANNELS.dispatcher is None:
        raise NotWired("no dispatcher is registered for the outbox; call portal.wiring.wire()")
    return CHANNELS.dispatcher


def _remember(session: Session, message_ids: Sequence[int] = (), event_uuids: Sequence[str] = ()) -> None:
    """Note messages (or events whose webhook messages are) written in this transaction, for deliver_after_commit."""
    if message_ids:
        session.info.setdefault(_WRITTEN, []).extend(message_ids)
    if event_uuids:
        session.info.setdefault(_WRITTEN_EVENTS, []).extend(event_uuids)


@event.listens_for(Session, "after_rollback")
def _forget_written(session: Session) -> None:
    """Messages of a rolled-back transaction do not exist: never queue them."""
    session.info.pop(_WRITTEN, None)
    session.info.pop(_WRITTEN_EVENTS, None)


@dataclass
class RecordedEvent:
    """An event written to the outbox: its uuid (the envelope's event.uuid) and its type."""

    uuid: str
    event_type: str


def enqueue_sms(session: Session, *, to: str, body: str, package_id: int | None, purpose: str = "") -> OutboxMessage:
    """Add an SMS to the outbox (not committed). The body is encrypted because it may hold a code."""
    message = OutboxMessage(
        kind=SMS, package_id=package_id, payload={"to": to, "purpose": purpose},
        body_encrypted=crypto.encrypt(body),
    )
    session.add(message)
    session.flush()
    _remember(session, [message.id])
    return message


def envelope(event_type: str, event_uuid: str, payload: dict, vendor_name: str = "") -> dict:
    """The event as receivers get it: {"event": {"type", "uuid"[, "name"]}, "payload": {...}}."""
    event = {"type": event_type, "uuid": event_uuid}
    if vendor_name:
        event["name"] = vendor_name
    return {"event": event, "payload": payload}


@dataclass
class NewEvent:
    """An event to write: its type, payload, and what only its webhook bodies may carry (encrypted)."""

    event_type: str
    payload: dict
    package_id: int | None = None
    vendor_name: str = ""
    secret_payload: dict | None = None
    subscription_ids: list[int] = field(default_factory=list)


def _event_row(new: NewEvent, now: datetime) -> tuple[str, dict]:
    """The event's outbox row, as column values: pending fan-out when a subscription wants it, else done."""
    event_uuid = new_uuid()
    sealed = None
    if new.secret_payload and new.subscription_ids:
        full = envelope(new.event_type, event_uuid, {**new.payload, **new.secret_payload}, new.vendor_name)
        sealed = crypto.encrypt(json.dumps(full, separators=(",", ":"), ensure_ascii=False))
    wanted = bool(new.subscription_ids)
    return event_uuid, {
        "uuid": event_uuid, "kind": EVENT, "event_type": new.event_type, "package_id": new.package_id,
        "subscription_id": None, "event_uuid": event_uuid, "body_encrypted": sealed,
        "payload": envelope(new.event_type, event_uuid, new.payload, new.vendor_name),
        "status": OutboxMessage.PENDING if wanted else OutboxMessage.SENT, "sent_at": None if wanted else now,
        "created_at": now, "next_attempt_at": now, "attempts": 0, "last_error": "", "provider_id": "",
        "lease_until": None}


# A Core INSERT (no ORM bookkeeping). Declarative types __table__ as any FromClause; a mapped class's is a Table.
_INSERT = insert(cast(Table, OutboxMessage.__table__))


def write_events(session: Session, new_events: list[NewEvent]) -> list[RecordedEvent]:
    """Insert the events' rows at once (not committed); the worker fans them out to their subscriptions.

    A command's latency matters, so the transaction writes one row per event (one multi-row Core
    INSERT) and no delivery rows: an event some subscription wants is stored "pending", and
    fan_out() turns it into one webhook message per subscription after the commit, atomically, so a
    crash in between loses nothing (the sweep fans out what was left pending).
    """
    now = utcnow()
    recorded, rows, fanned_out = [], [], []
    for new in new_events:
        event_uuid, row = _event_row(new, now)
        recorded.append(RecordedEvent(event_uuid, new.event_type))
        rows.append(row)
        if new.subscription_ids:
            fanned_out.append(event_uuid)
    if rows:
        session.connection().execute(_INSERT, rows)
        _remember(session, event_uuids=fanned_out)
    return recorded


def fan_out(session: Session, event_uuid: str) -> list[int]:
    """Write a pending event's webhook messages, one per subscription that wants it, and commit; their ids.

    The subscriptions are those the registered recipients lookup names (portal.webhooks: active now,
    receiving the type or "*", and existing when the event happened). The conditional UPDATE makes the
    fan-out happen once even when two workers (or a worker and the sweep) race; the loser gets []. A
    sealed body (a pickup code for an Extension application) moves into the webhook messages and is
    wiped from the event. Raises NotWired, before any change, when no recipients lookup is registered.
    """
    recipients = _recipients()
    event_row = session.execute(
        select(OutboxMessage.event_type, OutboxMessage.package_id, OutboxMessage.payload,
               OutboxMessage.body_encrypted, OutboxMessage.created_at)
        .where(OutboxMessage.uuid == event_uuid, OutboxMessage.kind == EVENT,
               OutboxMessage.status == OutboxMessage.PENDING)).first()
    if event_row is None:
        session.commit()
        return []
    now = utcnow()
    taken = rowcount(session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.uuid == event_uuid, OutboxMessage.kind == EVENT,
               OutboxMessage.status == OutboxMessage.PENDING)
        .values(status=OutboxMessage.SENT, sent_at=now, body_encrypted=None)
        .execution_options(synchronize_session=False)))
    if taken != 1:
        session.rollback()
        return []
    event_type, package_id, payload, sealed, happened_at = event_row
    subscription_ids = recipients(session, event_type, happened_at)
    if subscription_ids:
        session.execute(_INSERT, [
            {"uuid": new_uuid(), "kind": WEBHOOK, "event_type": event_type, "package_id": package_id,
             "subscription_id": subscription_id, "event_uuid": event_uuid, "payload": payload,
             "body_encrypted": sealed, "status": OutboxMessage.PENDING, "sent_at": None, "created_at": now,
             "next_attempt_at": now, "attempts": 0, "last_error": "", "provider_id": "", "lease_until": None}
            for subscription_id in subscription_ids])
    ids = webhook_ids_of(session, [event_uuid])
    session.commit()
    return ids


def enqueue_webhook(session: Session, subscription_id: int, event_type: str, payload: dict, *,
                    event_uuid: str | None = None, package_id: int | None = None, vendor_name: str = "",
                    secret_payload: dict | None = None) -> OutboxMessage:
    """Add one event's delivery to one subscription (not committed). Its uuid is the webhook-id.

    secret_payload (e.g. a pickup code) is merged into the payload only inside body_encrypted; the
    plain payload column never holds it, and body_encrypted is wiped once delivered.
    """
    event_uuid = event_uuid or new_uuid()
    now = utcnow()
    message = OutboxMessage(kind=WEBHOOK, uuid=new_uuid(), event_type=event_type, package_id=package_id,
                            subscription_id=subscription_id, event_uuid=event_uuid,
                            payload=envelope(event_type, event_uuid, payload, vendor_name),
                            created_at=now, next_attempt_at=now, status=OutboxMessage.PENDING, attempts=0)
    if secret_payload:
        full = envelope(event_type, event_uuid, {**payload, **secret_payload}, vendor_name)
        message.body_encrypted = crypto.encrypt(json.dumps(full, separators=(",", ":"), ensure_ascii=False))
    session.add(message)
    session.flush()
    _remember(session, [message.id])
    return message


def requeue(message: OutboxMessage) -> None:
    """Put a message back to pending, due now, with a fresh set of attempts (same uuid). Not committed."""
    message.status, message.next_attempt_at, message.attempts = OutboxMessage.PENDING, utcnow(), 0
    message.lease_until, message.last_error = None, ""


def written_ids(session: Session) -> tuple[list[int], list[str]]:
    """Message ids and event uuids this session wrote since the last call (a rollback forgets them)."""
    return list(session.info.pop(_WRITTEN, [])), list(session.info.pop(_WRITTEN_EVENTS, []))


def deliver_after_commit(session: Session, message_ids: list[int] | None = None) -> None:
    """Queue delivery of the messages a committed transaction wrote (given, and remembered by this session).

    One task on the queue, however many messages. With the queue in immediate mode (tests) they are
    delivered here, inline; a failure stays in the outbox for a retry either way. Raises NotWired when
    there is something to queue and no dispatcher.
    """
    written, event_uuids = written_ids(session)
    ids = list(dict.fromkeys([*(message_ids or []), *written]))
    if not ids and not event_uuids:
        return
    dispatch = _dispatcher()
    try:
        dispatch(ids, event_uuids)
    except Exception:  # a queue that is down must not fail the request: the sweep catches up
        log.exception("could not queue outbox messages %s / events %s; the sweep will pick them up", ids,
                      event_uuids)


def ids_sent_alone(session: Session, message_ids: Sequence[int]) -> list[int]:
    """Of these messages, the ones of kinds without a batch sender (SMS), by id: they go out one by one."""
    if not message_ids:
        return []
    batched = list(CHANNELS.batch_senders)
    return list(session.scalars(select(OutboxMessage.id).where(OutboxMessage.id.in_(list(message_ids)),
                                                               OutboxMessage.kind.not_in(batched))
                                .order_by(OutboxMessage.id)))


def webhook_ids_of(session: Session, event_uuids: list[str]) -> list[int]:
    """The webhook messages of some events, by id."""
    if not event_uuids:
        return []
    return list(session.scalars(select(OutboxMessage.id).where(OutboxMessage.event_uuid.in_(event_uuids),
                                                               OutboxMessage.kind == WEBHOOK)
                                .order_by(OutboxMessage.id)))


def _due(now: datetime):
    """SQL condition: pending or failed and due, or claimed by a worker whose lease ran out."""
    return or_(
        and_(OutboxMessage.status.in_([OutboxMessage.PENDING, OutboxMessage.FAILED]),
             OutboxMessage.next_attempt_at <= now),
        and_(OutboxMessage.status == OutboxMessage.SENDING, OutboxMessage.lease_until < now),
    )


def claim(session: Session, message_id: int, *, now: datetime | None = None, force: bool = False) -> datetime | None:
    """Claim a message for delivery and commit; returns the lease (the claim's token) or None when not ours.

    A conditional UPDATE, so two workers never both claim it (SQLite and PostgreSQL alike). force
    (a person asked: Retry, redeliver) also takes failed or dead messages before their retry time.
    """
    now = now or utcnow()
    lease = now + timedelta(seconds=current_app.config.get("OUTBOX_LEASE_SECONDS", 60))
    condition = _due(now)
    if force:
        condition = or_(condition, OutboxMessage.status.in_(
            [OutboxMessage.PENDING, OutboxMessage.FAILED, OutboxMessage.DEAD]))
    claimed = rowcount(session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.kind.in_(DELIVERABLE), condition)
        .values(status=OutboxMessage.SENDING, lease_until=lease, attempts=OutboxMessage.attempts + 1)
        .execution_options(synchronize_session=False)
    ))
    session.commit()
    return lease if claimed == 1 else None


def finish(session: Session, message_id: int, lease: datetime, **values) -> bool:
    """Store a delivery's outcome if our claim still holds (not committed); False when another worker took over."""
    return rowcount(session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, OutboxMessage.status == OutboxMessage.SENDING,
               OutboxMessage.lease_until == lease)
        .values(lease_until=None, **values)
        .execution_options(synchronize_session=False)
    )) == 1


T = TypeVar("T")
# How long before its lease runs out a sent message's outcome stops being retried (the sweep may take it then).
RECORD_MARGIN = timedelta(seconds=5)


def record_after_send(session: Session, lease: datetime, write: Callable[[], T]) -> T:
    """Write what a delivery did once it reached the receiver (write runs the statements and commits), retrying
    while the database is briefly unreachable (restarting, failing over).

    The message went out: if its outcome were not written, its lease would run out and it would be sent again
    (a second SMS to the customer, a second delivery of the same webhook id). So the write is retried with a short
    backoff until RECORD_MARGIN before the lease ends, then the error is raised (at least once, as before).
    """
    pause = 0.2
    while True:
        try:
            return write()
        except (OperationalError, InterfaceError, DisconnectionError) as exc:
            try:
                session.rollback()
            except Exception:  # noqa: BLE001 - the connection is gone; the pool replaces it on the next try
                log.debug("rollback after a failed outcome write failed", exc_info=True)
            if utcnow() + timedelta(seconds=pause) >= lease - RECORD_MARGIN:
                raise
            log.warning("the outcome of a sent message could not be written (%s); trying again in %.1f s",
                        type(exc).__name__, pause)
            time.sleep(pause)
            pause = min(pause * 2, 2.0)


def process_message(session: Session, message_id: int, *, now: datetime | None = None,
                    force: bool = False) -> Outcome | None:
    """Claim one message and deliver it with its kind's sender; None when it was not due or someone else has it.

    Raises NotWired, before claiming anything, when a deliverable kind has no sender.
    """
    missing = [kind for kind in DELIVERABLE if kind not in CHANNELS.senders]
    if missing:
        raise NotWired(f"no sender is registered for outbox messages of kind {missing[0]!r}; call portal.wiring.wire()")
    lease = claim(session, message_id, now=now, force=force)
    if lease is None:
        return None
    message = session.get(OutboxMessage, message_id, populate_existing=True)
    if message is None:  # deleted (its subscription was) since the claim
        return None
    attempts, kind = message.attempts, message.kind
    try:
        return CHANNELS.senders[kind](session, message, lease)
    except Exception as exc:  # noqa: BLE001 - a sender's bug must not leave the message "sending" for ever
        session.rollback()
        log.exception("outbox message %s (%s) failed unexpectedly on attempt %s", message_id, kind, attempts)
        return _failed_unexpectedly(session, message_id, lease, attempts, exc)


# How many unexpected failures (a sender's bug, not a refusal by the receiver) a message gets before it is dead.
UNEXPECTED_MAX_ATTEMPTS = 8


def _failed_unexpectedly(session: Session, message_id: int, lease: datetime, attempts: int,
                         exc: Exception) -> Outcome:
    """Record an unexpected failure as a failed attempt: retried with backoff, dead after UNEXPECTED_MAX_ATTEMPTS."""
    error = _("The delivery failed unexpectedly (%(kind)s: %(reason)s).", kind=exc.__class__.__name__,
              reason=str(exc)[:300])
    dead = attempts >= UNEXPECTED_MAX_ATTEMPTS
    delay = None if dead else float(min(300, 15 * 2 ** attempts))
    status = OutboxMessage.DEAD if dead else OutboxMessage.FAILED
    ours = finish(session, message_id, lease, status=status, last_error=error,
                  next_attempt_at=utcnow() + timedelta(seconds=delay or 0))
    session.commit()
    return Outcome(message_id, status, delay) if ours else Outcome(message_id, OutboxMessage.SENDING)


def deliver_sms(session: Session, message_id: int) -> OutboxMessage | None:
    """Send one SMS now if it is due, and record the outcome; returns the message as it is afterwards."""
    message = session.get(OutboxMessage, message_id)
    if message is None or message.kind != SMS:
        return message
    process_message(session, message_id)
    return session.get(OutboxMessage, message_id, populate_existing=True)


def retry_sms(session: Session, message_id: int) -> OutboxMessage | None:
    """Send a failed SMS again now, whatever its retry time (the staff "Retry" button)."""
    message = session.get(OutboxMessage, message_id)
    if message is None or message.kind != SMS:
        return message
    process_message(session, message_id, force=True)
    return session.get(OutboxMessage, message_id, populate_existing=True)


def latest_sms(session: Session, package_id: int) -> OutboxMessage | None:
    """The newest SMS written for a package, to show whether it went out."""
    return session.scalar(
        select(OutboxMessage)
        .where(OutboxMessage.package_id == package_id, OutboxMessage.kind == SMS)
        .order_by(OutboxMessage.id.desc())
        .limit(1)
    )


def pending_sms(session: Session, limit: int = 100) -> list[OutboxMessage]:
    """SMS that are due: pending or failed with their retry time reached."""
    return list(session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.kind == SMS,
               OutboxMessage.status.in_([OutboxMessage.PENDING, OutboxMessage.FAILED]),
               OutboxMessage.next_attempt_at <= utcnow())
        .order_by(OutboxMessage.id)
        .limit(limit)
    ))


def due_event_uuids(session: Session, *, now: datetime | None = None, limit: int = 500) -> list[str]:
    """Events still waiting for their fan-out a while after they happened (the task that should have done it was lost)."""
    now = now or utcnow()
    return list(session.scalars(
        select(OutboxMessage.uuid)
        .where(OutboxMessage.status == OutboxMessage.PENDING, OutboxMessage.next_attempt_at <= now - SWEEP_GRACE,
               OutboxMessage.kind == EVENT)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)))


def due_message_ids(session: Session, *, now: datetime | None = None, limit: int = 500) -> list[int]:
    """Messages the sweep should queue: due for a while (their own task may be lost) or with a lapsed lease."""
    now = now or utcnow()
    stuck = or_(
        and_(OutboxMessage.status.in_([OutboxMessage.PENDING, OutboxMessage.FAILED]),
             OutboxMessage.next_attempt_at <= now - SWEEP_GRACE),
        and_(OutboxMessage.status == OutboxMessage.SENDING, OutboxMessage.lease_until < now),
    )
    return list(session.scalars(
        select(OutboxMessage.id).where(OutboxMessage.kind.in_(DELIVERABLE), stuck)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(limit)))


# --- Batches: claim many due messages at once, deliver them together, fan out many events at once ----------

_CLAIMED = (OutboxMessage.id, OutboxMessage.uuid, OutboxMessage.kind, OutboxMessage.event_type,
            OutboxMessage.subscription_id, OutboxMessage.package_id, OutboxMessage.payload,
            OutboxMessage.body_encrypted, OutboxMessage.attempts)


DEFAULT_BATCH_SIZE = 32


def batch_size() -> int:
    """How many messages a worker thread claims and sends at once (OUTBOX_BATCH_SIZE, default 32)."""
    return max(1, int(current_app.config.get("OUTBOX_BATCH_SIZE", DEFAULT_BATCH_SIZE)))


def lease_for(now: datetime) -> datetime:
    """When a claim made now runs out (OUTBOX_LEASE_SECONDS)."""
    return now + timedelta(seconds=current_app.config.get("OUTBOX_LEASE_SECONDS", 60))


_MESSAGES = cast(Table, OutboxMessage.__table__)
_STATEMENTS: dict[tuple, Any] = {}


def _due_at(table: Table) -> Any:
    """_due() on the Core table, with the time as the bound parameter "now"."""
    now: Any = bindparam("now")
    return or_(and_(table.c.status.in_([OutboxMessage.PENDING, OutboxMessage.FAILED]), table.c.next_attempt_at <= now),
               and_(table.c.status == OutboxMessage.SENDING, table.c.lease_until < now))


def _claim_statement(kind: str, limit: int, by_id: bool) -> Any:
    """The claiming UPDATE ... RETURNING for a kind and batch size (built once: a statement's construction costs
    more CPU than its round trip). Parameters: now, lease, and ids when by_id."""
    key = ("claim", kind, limit, by_id)
    statement = _STATEMENTS.get(key)
    if statement is None:
        table = _MESSAGES
        now: Any = bindparam("now")
        # _due() in the shape of ix_outbox_due (undelivered rows of a kind in due order): read in index order, it
        # stops after `limit` rows however long the backlog. A lapsed claim counts from its due time (a claim made
        # before its retry time, by a person's Retry, waits for that time here; the sweep takes it at once).
        pick = select(table.c.id).where(
            table.c.kind == kind,
            table.c.status.in_([OutboxMessage.PENDING, OutboxMessage.FAILED, OutboxMessage.SENDING]),
            table.c.next_attempt_at <= now,
            or_(table.c.status != OutboxMessage.SENDING, table.c.lease_until < now))
        if by_id:
            pick = pick.where(table.c.id.in_(bindparam("ids", expanding=True)))
        # A materialized CTE runs once: as a plain IN (subquery) PostgreSQL may run it again for other rows of the
        # plan, and LIMIT with SKIP LOCKED would then hand out more than `limit` rows.
        picked = (pick.order_by(table.c.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
                  .cte("picked").prefix_with("MATERIALIZED"))
        statement = (update(table)
                     .where(table.c.id.in_(select(picked.c.id)), table.c.kind == kind, _due_at(table))
                     .values(status=OutboxMessage.SENDING, lease_until=bindparam("lease"),
                             attempts=table.c.attempts + 1)
                     .returning(*(table.c[column.key] for column in _CLAIMED)))
        _STATEMENTS[key] = statement
    return statement


def claim_batch(session: Session, kind: str, *, limit: int, ids: Sequence[int] | None = None,
                now: datetime | None = None) -> tuple[datetime, list[Claimed]]:
    """Claim up to `limit` due messages of a kind (only `ids`, when given) under one lease, and commit.

    One WITH picked AS MATERIALIZED (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED) UPDATE ... RETURNING: on PostgreSQL concurrent
    workers skip each other's rows instead of waiting; SQLite has a single writer. The outer WHERE repeats the
    due condition, so a row is never claimed twice (the same guarantee as claim()). Oldest due first.
    """
    now = now or utcnow()
    lease = lease_for(now)
    params: dict[str, Any] = {"now": now, "lease": lease}
    if ids is not None:
        if not ids:
            return lease, []
        params["ids"] = list(ids)
    rows = session.connection().execute(_claim_statement(kind, limit, ids is not None), params).all()
    session.commit()
    return lease, [Claimed(*row) for row in rows]


def process_batch(session: Session, kind: str, *, limit: int, ids: Sequence[int] | None = None,
                  now: datetime | None = None) -> tuple[list[Claimed], list[Outcome]]:
    """Claim a batch of due messages of a kind and deliver it with the kind's batch sender: (claimed, outcomes).

    An unexpected exception in the sender is, for every message of the batch whose outcome it had not recorded,
    a logged failed attempt that follows the retry and dead-letter rules (as in process_message). Raises NotWired,
    before claiming anything, when the kind has no batch sender.
    """
    sender = CHANNELS.batch_senders.get(kind)
    if sender is None:
        raise NotWired(f"no batch sender is registered for outbox messages of kind {kind!r}; call portal.wiring.wire()")
    lease, batch = claim_batch(session, kind, limit=limit, ids=ids, now=now)
    if not batch:
        return [], []
    try:
        return batch, sender(session, batch, lease)
    except Exception as exc:  # noqa: BLE001 - a sender's bug must not leave the batch "sending" until its lease ends
        session.rollback()
        log.exception("a batch of %s outbox %s message(s) failed unexpectedly", len(batch), kind)
        outcomes = [_failed_unexpectedly(session, claimed.id, lease, claimed.attempts, exc) for claimed in batch]
        return batch, [outcome for outcome in outcomes if outcome.status != OutboxMessage.SENDING]


def _fan_out_statement(limit: int) -> Any:
    """The UPDATE ... RETURNING that takes up to `limit` pending events (built once). Parameter: now."""
    key = ("fan_out", limit)
    statement = _STATEMENTS.get(key)
    if statement is None:
        table = _MESSAGES
        pick = (select(table.c.id)
                .where(table.c.kind == EVENT, table.c.status == OutboxMessage.PENDING,
                       table.c.next_attempt_at <= bindparam("now"))
                .order_by(table.c.next_attempt_at).limit(limit).with_for_update(skip_locked=True)
                .cte("picked").prefix_with("MATERIALIZED"))  # runs once (see _claim_statement)
        statement = (update(table)
                     .where(table.c.id.in_(select(pick.c.id)), table.c.kind == EVENT,
                            table.c.status == OutboxMessage.PENDING)
                     .values(status=OutboxMessage.SENT, sent_at=bindparam("now"))
                     .returning(table.c.id, table.c.uuid, table.c.event_type, table.c.package_id, table.c.payload,
                                table.c.body_encrypted, table.c.created_at))
        _STATEMENTS[key] = statement
    return statement


def fan_out_due(session: Session, *, limit: int, now: datetime | None = None, commit: bool = True) -> int:
    """Fan out up to `limit` pending events at once (oldest first) and commit; how many events it took.

    The batch form of fan_out(): one UPDATE ... RETURNING takes the events (skipping rows another worker has locked
    on PostgreSQL), one multi-row INSERT writes their webhook messages, in one transaction, so each event is fanned
    out exactly once whoever races for it. Sealed bodies move into the messages and are wiped from the events.
    Raises NotWired, before any change, when no recipients lookup is registered. commit=False leaves the
    transaction open (drain claims the new messages in it: one commit for both).
    """
    recipients = _recipients()
    now = now or utcnow()
    rows = session.connection().execute(_fan_out_statement(limit), {"now": now}).all()
    sealed = [row.id for row in rows if row.body_encrypted]
    if sealed:
        session.execute(update(OutboxMessage).where(OutboxMessage.id.in_(sealed)).values(body_encrypted=None)
                        .execution_options(synchronize_session=False))
    messages = [
        {"uuid": new_uuid(), "kind": WEBHOOK, "event_type": row.event_type, "package_id": row.package_id,
         "subscription_id": subscription_id, "event_uuid": row.uuid, "payload": row.payload,
         "body_encrypted": row.body_encrypted, "status": OutboxMessage.PENDING, "sent_at": None, "created_at": now,
         "next_attempt_at": now, "attempts": 0, "last_error": "", "provider_id": "", "lease_until": None}
        for row in rows for subscription_id in recipients(session, row.event_type, row.created_at)]
    if messages:
        session.execute(_INSERT, messages)
    if commit:
        session.commit()
    return len(rows)


@dataclass
class Drained:
    """What drain() did: the messages it claimed, their outcomes, and whether work was left when it stopped."""

    claimed: list[Claimed] = field(default_factory=list)
    outcomes: list[Outcome] = field(default_factory=list)
    more: bool = False


def drain(session: Session, *, batch: int, seconds: float, ids: Sequence[int] = (),
          on_backlog: Callable[[], None] | None = None) -> Drained:
    """Fan out pending events and deliver due messages of every kind with a batch sender, a batch at a time,
    until nothing is due or `seconds` have passed (then `more` says whether a full batch was still coming).

    `ids` (messages a committed transaction wrote) are claimed first, whatever their age. on_backlog is called
    once, after the first full pass (more is waiting: the caller may ask other workers to help).
    """
    done = Drained()
    kinds = list(CHANNELS.batch_senders)
    for start in range(0, len(ids), batch):
        for kind in kinds:
            claimed, outcomes = process_batch(session, kind, limit=batch, ids=ids[start:start + batch])
            done.claimed += claimed
            done.outcomes += outcomes
    started = time.monotonic()
    while True:
        fanned = fan_out_due(session, limit=batch, commit=not kinds)
        full = fanned >= batch
        for kind in kinds:
            claimed, outcomes = process_batch(session, kind, limit=batch)
            done.claimed += claimed
            done.outcomes += outcomes
            full = full or len(claimed) >= batch
        if not full:
            return done
        if on_backlog is not None:
            on_backlog()
            on_backlog = None
        if time.monotonic() - started >= seconds:
            done.more = True
            return done
