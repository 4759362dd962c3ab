"""The catalogue of brand-specific job types (setup step 15): what each does and which parameters it takes.

A job type's run(session, params) does its work on our data, commits, and returns a sentence for the
run's result. Parameters are checked against the type's spec before a job is saved.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from portal.db_types import utcnow
from portal.errors import CommandRejected, ValidationFailed
from portal.idempotency.models import IdempotencyRecord
from portal.orders import service as orders
from portal.otp.models import PickupCode
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.packages.models import Package
from portal.packages.states import State
from portal.stores.models import StockLocation


@dataclass(frozen=True)
class Param:
    """One parameter of a job type: a whole number within bounds, with a default."""

    name: str
    default: int
    minimum: int
    maximum: int
    help: str


@dataclass(frozen=True)
class JobType:
    """A kind of job an admin can schedule."""

    key: str
    label: str
    description: str
    run: Callable[[Session, dict], str]
    params: tuple[Param, ...] = field(default_factory=tuple)


def release_expired_pickup_codes(session: Session, params: dict) -> str:
    """Mark active pickup codes past their expiry as replaced, so none of them can be used."""
    released = session.execute(
        update(PickupCode)
        .where(PickupCode.status == PickupCode.ACTIVE, PickupCode.expires_at < utcnow())
        .values(status=PickupCode.REPLACED)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return f"Released {released} expired pickup code(s)."


def retry_outbox(session: Session, params: dict) -> str:
    """Send SMS that are pending or failed and due for a retry, up to params["limit"]."""
    messages = outbox.pending_sms(session, limit=params["limit"])
    sent = 0
    for message in messages:
        after = outbox.deliver_sms(session, message.id)
        if after is not None and after.status == OutboxMessage.SENT:
            sent += 1
    if not messages:
        return "No SMS was due for a retry."
    return f"Tried {len(messages)} SMS: {sent} sent, {len(messages) - sent} still failing."


def purge_idempotency_records(session: Session, params: dict) -> str:
    """Delete stored API answers (Idempotency-Key) older than params["days"] days."""
    cutoff = utcnow() - timedelta(days=params["days"])
    deleted = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    return f"Deleted {deleted} idempotency record(s) older than {params['days']} day(s)."


def report_waiting_packages(session: Session, params: dict) -> str:
    """Count packages still Waiting after params["hours"] hours, per store."""
    cutoff = utcnow() - timedelta(hours=params["hours"])
    rows = session.execute(
        select(StockLocation.erp_code, StockLocation.name, func.count(Package.id))
        .join(Package, Package.stock_location_id == StockLocation.id)
        .where(Package.state == State.WAITING, Package.created_at < cutoff)
        .group_by(StockLocation.id, StockLocation.erp_code, StockLocation.name)
        .order_by(func.count(Package.id).desc(), StockLocation.erp_code)
    ).all()
    if not rows:
        return f"No package has been waiting longer than {params['hours']} h."
    total = sum(n for _, _, n in rows)
    stores = "; ".join(f"{code} {name}: {n}" for code, name, n in rows)
    return f"{total} package(s) waiting longer than {params['hours']} h in {len(rows)} store(s): {stores}."


def import_orders(session: Session, params: dict) -> str:
    """Fetch the orders ORDER_FILTERING chooses from Omnitron and make packages of the new ones (setup step 8)."""
    summary = orders.import_orders(session, full=bool(params["full"]), trigger="job")
    if summary.status != "done":
        raise CommandRejected(f"Order import run #{summary.run_id}: {summary.text()}")
    return f"Order import run #{summary.run_id}: {summary.text()}"


JOB_TYPES: dict[str, JobType] = {t.key: t for t in [
    JobType("release_expired_pickup_codes", "Release expired pickup codes",
            "Marks pickup codes past their expiry as replaced and reports how many.",
            release_expired_pickup_codes),
    JobType("outbox_retry", "Retry failed SMS",
            "Sends SMS from the outbox that are pending or failed and due for a retry.", retry_outbox,
            (Param("limit", 100, 1, 1000, "At most this many SMS per run."),)),
    JobType("purge_idempotency_records", "Purge idempotency records",
            "Deletes stored API answers kept for Idempotency-Key replays once they are old.",
            purge_idempotency_records,
            (Param("days", 7, 1, 365, "Delete records older than this many days."),)),
    JobType("report_waiting_packages", "Report waiting packages",
            "Counts the packages still waiting after a number of hours, per store.", report_waiting_packages,
            (Param("hours", 24, 1, 720, "Count packages waiting longer than this many hours."),)),
    JobType("import_orders", "Import orders from Omnitron",
            "Fetches the orders the order filtering (step 8) chooses and creates a package for each new one, "
            "placed by the channel's scenario (step 11) or at its click & collect store.", import_orders,
            (Param("full", 0, 0, 1, "1 reads every order from the start date again (after fixing skipped ones); "
                                    "0 reads only orders changed since the last run."),)),
]}
CHOICES = [(t.key, t.label) for t in JOB_TYPES.values()]


def get_type(key: str) -> JobType:
    """The job type named by key. Raises ValidationFailed."""
    if key not in JOB_TYPES:
        raise ValidationFailed("Choose a job type from the list." if not key else f"Unknown job type {key!r}.",
                               field="job_type")
    return JOB_TYPES[key]


def default_parameters(key: str) -> dict:
    """The parameters a new job of this type starts with."""
    return {p.name: p.default for p in get_type(key).params}


def validate_parameters(key: str, raw: object) -> dict:
    """Parameters (JSON text or a dict) checked against the type's spec, defaults filled in.

    Raises ValidationFailed naming the parameter.
    """
    job_type = get_type(key)
    if isinstance(raw, Mapping):
        given = dict(raw)
    else:
        text = str(raw or "").strip()
        try:
            given = json.loads(text) if text else {}
        except json.JSONDecodeError as exc:
            raise ValidationFailed(f"The parameters are not valid JSON (line {exc.lineno}, column {exc.colno}: "
                                   f"{exc.msg}).", field="parameters") from None
        if not isinstance(given, dict):
            raise ValidationFailed('The parameters must be a JSON object, like {"days": 7}.', field="parameters")
    spec = {p.name: p for p in job_type.params}
    unknown = sorted(set(given) - set(spec))
    if unknown:
        allowed = ", ".join(spec) or "none"
        raise ValidationFailed(f"{job_type.label} has no parameter {unknown[0]!r} (it takes: {allowed}).",
                               field="parameters")
    result = {}
    for name, param in spec.items():
        value = given.get(name, param.default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationFailed(f"{name} must be a whole number.", field="parameters")
        if not param.minimum <= value <= param.maximum:
            raise ValidationFailed(f"{name} must be from {param.minimum} to {param.maximum}.", field="parameters")
        result[name] = value
    return result
