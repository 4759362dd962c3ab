"""The catalogue of brand-specific job types (setup step 15): what each does and which parameters it takes.

A job type's run(session, params) does its work on our data, commits, and returns a sentence for the
run's result. Parameters are checked against the type's spec before a job is saved.

Labels, descriptions and parameter help are English constants marked with N_ (the API shows them as they
are); screens translate them with _() where they show them.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from portal.db_types import rowcount, utcnow
from portal.errors import CommandRejected, ValidationFailed
from portal.i18n import N_
from portal.idempotency.models import IdempotencyRecord
from portal.orders import service as orders
from portal.otp.models import PickupCode
from portal.outbox import service as outbox
from portal.outbox.models import OutboxMessage
from portal.packages import hold_sweep, shipment_tracking
from portal.packages.models import Package
from portal.packages.states import State
from portal.stores.models import StockLocation

NUMBER = "number"
SWITCH = "switch"


@dataclass(frozen=True)
class Param:
    """One parameter of a job type, as the job form shows it: a whole number within bounds, or a switch
    (stored as 0 or 1), with a label, a help text and a default. The form's field is named param_<name>."""

    name: str
    default: int
    minimum: int
    maximum: int
    help: str
    label: str = ""
    type: str = NUMBER

    @property
    def field(self) -> str:
        """The form field's name."""
        return f"param_{self.name}"


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
    released = rowcount(session.execute(
        update(PickupCode)
        .where(PickupCode.status == PickupCode.ACTIVE, PickupCode.expires_at < utcnow())
        .values(status=PickupCode.REPLACED)
        .execution_options(synchronize_session=False)
    ))
    session.commit()
    return _("Released %(count)s expired pickup code(s).", count=released)


def retry_outbox(session: Session, params: dict) -> str:
    """Send SMS that are pending or failed and due for a retry, up to params["limit"]."""
    messages = outbox.pending_sms(session, limit=params["limit"])
    sent = 0
    for message in messages:
        after = outbox.deliver_sms(session, message.id)
        if after is not None and after.status == OutboxMessage.SENT:
            sent += 1
    if not messages:
        return _("No SMS was due for a retry.")
    return _("Tried %(count)s SMS: %(sent)s sent, %(failing)s still failing.", count=len(messages), sent=sent,
             failing=len(messages) - sent)


def purge_idempotency_records(session: Session, params: dict) -> str:
    """Delete stored API answers (Idempotency-Key) older than params["days"] days."""
    cutoff = utcnow() - timedelta(days=params["days"])
    deleted = rowcount(session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff)
        .execution_options(synchronize_session=False)
    ))
    session.commit()
    return _("Deleted %(count)s idempotency record(s) older than %(days)s day(s).", count=deleted,
             days=params["days"])


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
        return _("No package has been waiting longer than %(hours)s h.", hours=params["hours"])
    total = sum(n for _code, _name, n in rows)
    stores = "; ".join(f"{code} {name}: {n}" for code, name, n in rows)
    return _("%(total)s package(s) waiting longer than %(hours)s h in %(count)s store(s): %(stores)s.",
             total=total, hours=params["hours"], count=len(rows), stores=stores)


def import_orders(session: Session, params: dict) -> str:
    """Fetch the orders ORDER_FILTERING chooses from Omnitron and make packages of the new ones (setup step 8)."""
    summary = orders.import_orders(session, full=bool(params["full"]), trigger="job")
    text = _("Order import run #%(id)s: %(summary)s", id=summary.run_id, summary=summary.text())
    if summary.status != "done":
        raise CommandRejected(text)
    return text


def sweep_holds(session: Session, params: dict) -> str:
    """Start a hold sweep run: reminders before ready packages' holds end, and the expiry after (portal.packages.hold)."""
    run = hold_sweep.start_sweep(session)
    if run.status == run.FAILED:
        raise CommandRejected(_("Hold sweep run #%(id)s failed: %(error)s", id=run.id, error=run.error))
    if run.status == run.DONE:
        return _("Hold sweep run #%(id)s: %(checked)s ready package(s) checked, %(reminded)s reminded, "
                 "%(expired)s expired.", id=run.id, checked=run.checked, reminded=run.reminded, expired=run.expired)
    return _("Hold sweep run #%(id)s was queued.", id=run.id)


def track_shipments(session: Session, params: dict) -> str:
    """Start a tracking run: retry due shipments, then move packages along their cargo shipments' states."""
    run = shipment_tracking.start_tracking(session)
    if run.status == run.FAILED:
        raise CommandRejected(_("Shipment tracking run #%(id)s failed: %(error)s", id=run.id, error=run.error))
    if run.status == run.DONE:
        return _("Shipment tracking run #%(id)s: %(created)s shipment(s) created on retry, %(checked)s tracked, "
                 "%(moved)s package move(s), %(errors)s not reachable.", id=run.id, created=run.created_shipments,
                 checked=run.checked, moved=run.moved, errors=run.errors)
    return _("Shipment tracking run #%(id)s was queued.", id=run.id)


JOB_TYPES: dict[str, JobType] = {t.key: t for t in [
    JobType("release_expired_pickup_codes", N_("Release expired pickup codes"),
            N_("Marks pickup codes past their expiry as replaced and reports how many."),
            release_expired_pickup_codes),
    JobType("outbox_retry", N_("Retry failed SMS"),
            N_("Sends SMS from the outbox that are pending or failed and due for a retry."), retry_outbox,
            (Param("limit", 100, 1, 1000, N_("At most this many SMS per run."), N_("SMS per run")),)),
    JobType("purge_idempotency_records", N_("Purge idempotency records"),
            N_("Deletes stored API answers kept for Idempotency-Key replays once they are old."),
            purge_idempotency_records,
            (Param("days", 7, 1, 365, N_("Delete records older than this many days."), N_("Keep for (days)")),)),
    JobType("report_waiting_packages", N_("Report waiting packages"),
            N_("Counts the packages still waiting after a number of hours, per store."), report_waiting_packages,
            (Param("hours", 24, 1, 720, N_("Count packages waiting longer than this many hours."),
                   N_("Waiting longer than (hours)")),)),
    JobType("import_orders", N_("Import orders from Omnitron"),
            N_("Fetches the orders the order filtering (step 8) chooses and creates a package for each new one, "
               "placed by the channel's scenario (step 11) or at its click & collect store."), import_orders,
            (Param("full", 0, 0, 1, N_("On: every order from the start date is read again (after fixing skipped "
                                       "ones). Off: only orders changed since the last run."),
                   N_("Read every order again"), SWITCH),)),
    JobType("hold_sweep", N_("Sweep pickup holds"),
            N_("Texts a reminder before a ready package's hold ends, and marks the packages whose hold ended "
               "(Problems tab), releasing their codes and running the expiry command when one is set."),
            sweep_holds),
    JobType("shipment_tracking", N_("Track cargo shipments"),
            N_("Creates the cargo shipments that are due for a retry, then asks the cargo companies where each "
               "shipment is and moves its package along (Shipped, Attempted Delivery, Delivered, Delivery Failed)."),
            track_shipments),
]}
CHOICES = [(t.key, t.label) for t in JOB_TYPES.values()]  # English labels: translate them where they show


def get_type(key: str) -> JobType:
    """The job type named by key. Raises ValidationFailed."""
    if key not in JOB_TYPES:
        raise ValidationFailed(_("Choose a job type from the list.") if not key
                               else _("Unknown job type %(key)r.", key=key), field="job_type")
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
            raise ValidationFailed(_("The parameters are not valid JSON (line %(line)s, column %(column)s: "
                                     "%(error)s).", line=exc.lineno, column=exc.colno, error=exc.msg),
                                   field="parameters") from None
        if not isinstance(given, dict):
            raise ValidationFailed(_('The parameters must be a JSON object, like {"days": 7}.'), field="parameters")
    spec = {p.name: p for p in job_type.params}
    unknown = sorted(set(given) - set(spec))
    if unknown:
        if spec:
            message = _("%(type)s has no parameter %(name)r (it takes: %(allowed)s).", type=_(job_type.label),
                        name=unknown[0], allowed=", ".join(spec))
        else:
            message = _("%(type)s has no parameter %(name)r (it takes: none).", type=_(job_type.label),
                        name=unknown[0])
        raise ValidationFailed(message, field="parameters")
    result = {}
    for name, param in spec.items():
        value = given.get(name, param.default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValidationFailed(_("%(name)s must be a whole number.", name=name), field="parameters")
        if not param.minimum <= value <= param.maximum:
            raise ValidationFailed(_("%(name)s must be from %(minimum)s to %(maximum)s.", name=name,
                                     minimum=param.minimum, maximum=param.maximum), field="parameters")
        result[name] = value
    return result


def parameters_from_form(key: str, form: Mapping) -> dict:
    """The parameters a job form posts as one field per parameter (param_<name>), checked and complete.

    An empty number field takes the default; a switch is on when posted. Raises ValidationFailed naming the
    field, with the parameter's label in the message.
    """
    result = {}
    for param in get_type(key).params:
        label = _(param.label) if param.label else param.name
        if param.type == SWITCH:
            result[param.name] = 1 if form.get(param.field) in ("on", "1", "true", True) else 0
            continue
        raw = str(form.get(param.field) or "").strip()
        if not raw:
            result[param.name] = param.default
            continue
        if not raw.isdigit() or not param.minimum <= int(raw) <= param.maximum:
            raise ValidationFailed(_("%(label)s must be a whole number from %(minimum)s to %(maximum)s.",
                                     label=label, minimum=param.minimum, maximum=param.maximum), field=param.field)
        result[param.name] = int(raw)
    return result


def has_parameter_fields(form: Mapping) -> bool:
    """True when a job form posts its parameters as fields (the form marks that with params_form)."""
    return form.get("params_form") == "1"
