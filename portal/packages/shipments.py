"""Cargo shipments: recorded with the command that packs or ships a package, made at the cargo company after it.

The command ("Complete Packaging" with shipment, or "Ship The Package") writes a pending Shipment row in its
own transaction (plan_shipment); nothing outside is called while the package row is locked. After the commit
a queue task (create_shipment_task) claims the row with a conditional UPDATE and a lease, calls the cargo
company's client (portal.cargo.clients) with no transaction open, and records the tracking number and the
label, or the error and when to try again. The every-minute sweep and the tracking run retry what is due,
and a person can Retry a failed one, so nothing is lost while the cargo service is down: the cargo company
makes one shipment per key however often it is asked.
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from huey import crontab
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from portal.cargo import clients
from portal.cargo import service as cargo
from portal.cargo.models import CargoCompany
from portal.db_types import plain_int, rowcount, utcnow
from portal.errors import CommandRejected, ValidationFailed
from portal.extensions import db
from portal.outbox import service as outbox
from portal.packages.events import package_payload
from portal.packages.locks import lock_package
from portal.packages.models import Package, PackageLog
from portal.packages.shipment_models import Shipment
from portal.packages.states import State
from portal.queue import app_context, huey
from portal.webhooks import catalogue, events

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
CREATED_COMMAND = "shipment-created"
FAILED_COMMAND = "shipment-failed"
RETRY_COMMAND = "shipment-retry"
# A cargo package in these states may still get its shipment (by Retry, when packing made none).
SHIPPABLE_STATES = (State.PACKED, State.SHIPPED)


def shipment_key(package: Package) -> str:
    """What the cargo company knows the package's shipment by: the same for every try."""
    return f"oms-{package.id}-{package.number}"[:120]


def retry_delay(attempts: int) -> timedelta:
    """How long after a failed try the next one comes: 30 s doubling, at most 30 minutes."""
    return timedelta(seconds=min(1800, 30 * 2 ** max(0, attempts - 1)))


def get_shipment(session: Session, package_id: int) -> Shipment | None:
    """The package's shipment, if it has one."""
    return session.scalar(select(Shipment).where(Shipment.package_id == package_id))


def default_company(session: Session) -> CargoCompany | None:
    """The cargo company shipments use unless a command names one: the first one the OMS manages."""
    return session.scalar(select(CargoCompany).where(CargoCompany.is_managed_by_oms.is_(True))
                          .order_by(CargoCompany.id).limit(1))


def choose_company(session: Session, chosen: object) -> CargoCompany | None:
    """The cargo company a command names (id or ERP code), or the default one. Raises ValidationFailed."""
    if chosen in (None, ""):
        return default_company(session)
    company_id = plain_int(chosen)
    company = session.get(CargoCompany, company_id) if company_id is not None else None
    if company is None and isinstance(chosen, str):
        company = session.scalar(select(CargoCompany).where(CargoCompany.erp_code == chosen.strip()))
    if company is None:
        raise ValidationFailed(_("No cargo company %(name)s; choose one from setup step 14.", name=chosen),
                               field="cargo_company")
    if not company.is_managed_by_oms:
        raise ValidationFailed(_("The OMS does not manage shipping with %(name)s.", name=company.name),
                               field="cargo_company")
    return company


def plan_shipment(session: Session, package: Package, params: dict) -> Shipment | None:
    """Record a pending shipment for a cargo package inside the command's transaction (not committed).

    None when the package needs none: click & collect, a shipment exists already, the staff gave the tracking
    number of a parcel they sent themselves, or no cargo company is managed by the OMS.
    """
    if package.is_click_and_collect or get_shipment(session, package.id) is not None:
        return None
    if str(params.get("tracking_number") or "").strip():
        return None
    company = choose_company(session, params.get("cargo_company"))
    if company is None:
        return None
    now = utcnow()
    shipment = Shipment(package_id=package.id, cargo_company_id=company.id, key=shipment_key(package),
                        status=Shipment.PENDING, next_attempt_at=now, created_at=now, updated_at=now,
                        tracking_number="", tracking_status="", label_type="", attempts=0, last_error="")
    session.add(shipment)
    session.flush()
    return shipment


def planned_note(shipment: Shipment) -> str:
    """The audit note of a command that recorded a shipment."""
    name = shipment.cargo_company.name if shipment.cargo_company else ""
    return _("A shipment with %(company)s is being created.", company=name)


# Making the shipment at the cargo company -----------------------------------------------------------------------


def _claim(session: Session, shipment_id: int, now: datetime) -> datetime | None:
    """Take a due shipment for this worker (commits); returns the lease, or None when it is not due or taken."""
    lease = now + LEASE
    due = or_(and_(Shipment.status.in_((Shipment.PENDING, Shipment.FAILED)), Shipment.next_attempt_at <= now),
              and_(Shipment.status == Shipment.CREATING, Shipment.lease_until < now))
    claimed = rowcount(session.execute(
        update(Shipment).where(Shipment.id == shipment_id, due)
        .values(status=Shipment.CREATING, lease_until=lease, attempts=Shipment.attempts + 1, updated_at=now)
        .execution_options(synchronize_session=False)))
    session.commit()
    return lease if claimed == 1 else None


def _request(package: Package, shipment: Shipment) -> clients.ShipmentRequest:
    """What the cargo company needs to make the package's shipment."""
    store, customer = package.stock_location, package.customer
    return clients.ShipmentRequest(
        key=shipment.key, reference=package.number,
        sender=clients.Address(name=store.name, line=store.address or "", city=store.city or ""),
        recipient=clients.Address(name=customer.full_name, city=store.city or "", phone=customer.phone),
        parcels=1)


def _finish(session: Session, shipment_id: int, lease: datetime, **values) -> bool:
    """Write the outcome of a try if this worker still holds the shipment (not committed)."""
    return rowcount(session.execute(
        update(Shipment).where(Shipment.id == shipment_id, Shipment.status == Shipment.CREATING,
                               Shipment.lease_until == lease)
        .values(**values, lease_until=None, updated_at=utcnow()).execution_options(synchronize_session=False))) == 1


def create_shipment(session: Session, shipment_id: int) -> Shipment | None:
    """Make a due shipment at its cargo company and record the outcome (commits); None when it was not due.

    The cargo company is called with no transaction open; its answer is written only while this worker's
    lease holds, so a try taken over by another worker is not written twice.
    """
    now = utcnow()
    lease = _claim(session, shipment_id, now)
    if lease is None:
        return None
    shipment = session.get(Shipment, shipment_id, populate_existing=True)
    if shipment is None:
        return None
    package = session.get(Package, shipment.package_id)
    attempts = shipment.attempts
    try:
        if package is None:
            raise clients.CargoError(_("The package is gone."), retryable=False)
        company = shipment.cargo_company or default_company(session)
        if company is None:
            raise clients.CargoError(_("No cargo company is managed by the OMS; add one in setup step 14."),
                                     retryable=False)
        shipment.cargo_company_id = company.id
        try:
            conf = cargo.read_conf(company)
        except ValueError:
            raise clients.CargoError(_("The credentials of %(company)s cannot be read with the configured "
                                       "encryption keys; enter them again in setup step 14.",
                                       company=company.name), retryable=False) from None
        client = clients.client_for(current_app, company, conf)
        request = _request(package, shipment)
        company_name = company.name
        session.commit()  # hold no transaction while the cargo company is called
        made = client.create_shipment(request)
    except clients.CargoError as exc:
        session.rollback()
        return _record_failure(session, shipment_id, lease, attempts, exc)
    return _record_success(session, shipment_id, lease, made, company_name)


def _record_failure(session: Session, shipment_id: int, lease: datetime, attempts: int,
                    exc: clients.CargoError) -> Shipment | None:
    """The try failed: keep the error, and when to try again unless it cannot help or tries ran out."""
    final = not exc.retryable or attempts >= current_app.config.get("SHIPMENT_MAX_ATTEMPTS", 6)
    next_at = None if final else utcnow() + retry_delay(attempts)
    if _finish(session, shipment_id, lease, status=Shipment.FAILED, last_error=str(exc)[:1000],
               next_attempt_at=next_at):
        if final:
            shipment = session.get(Shipment, shipment_id)
            package = session.get(Package, shipment.package_id) if shipment else None
            if package is not None:
                session.add(PackageLog(package_id=package.id, from_state=package.state, to_state=package.state,
                                       command=FAILED_COMMAND, user_id=None,
                                       note=_("The cargo company did not create the shipment: %(error)s",
                                              error=str(exc)[:300])))
    session.commit()
    log.warning("shipment %s not created (try %s%s): %s", shipment_id, attempts, ", final" if final else "", exc)
    return session.get(Shipment, shipment_id, populate_existing=True)


def _record_success(session: Session, shipment_id: int, lease: datetime, made: clients.CreatedShipment,
                    company_name: str) -> Shipment | None:
    """The cargo company made it: keep the tracking number and label, audit it and raise shipment.created."""
    if not _finish(session, shipment_id, lease, status=Shipment.CREATED, tracking_number=made.tracking_number[:64],
                   tracking_status=made.status[:32], label=made.label, label_type=made.label_type[:40],
                   last_error="", next_attempt_at=None):
        session.rollback()
        log.warning("shipment %s was created but another worker had taken it over (lease ran out)", shipment_id)
        return session.get(Shipment, shipment_id, populate_existing=True)
    shipment = session.get(Shipment, shipment_id, populate_existing=True)
    package = session.get(Package, shipment.package_id) if shipment else None
    if shipment is not None and package is not None:
        session.add(PackageLog(package_id=package.id, from_state=package.state, to_state=package.state,
                               command=CREATED_COMMAND, user_id=None,
                               note=_("Shipment created with %(company)s, tracking number %(number)s.",
                                      company=company_name, number=made.tracking_number)))
        events.record_event(session, catalogue.SHIPMENT_CREATED,
                            {**package_payload(package), "shipment": shipment_json(shipment)}, package_id=package.id)
    session.commit()
    outbox.deliver_after_commit(session)
    return session.get(Shipment, shipment_id, populate_existing=True)


def shipment_json(shipment: Shipment) -> dict:
    """The shipment as events show it."""
    company = shipment.cargo_company
    return {"id": shipment.id, "key": shipment.key, "status": shipment.status,
            "tracking_number": shipment.tracking_number, "tracking_status": shipment.tracking_status,
            "cargo_company": {"id": company.id, "erp_code": company.erp_code, "name": company.name}
            if company else None}


def request_shipment(session: Session, package_id: int, *, user_id: int | None,
                     store_ids: list[int] | None) -> Shipment:
    """Retry a failed shipment now, or create the missing one of a packed or shipped cargo package (commits).

    Raises NotFound (another store's package) or CommandRejected saying why there is nothing to retry.
    """
    try:
        package = lock_package(session, package_id, store_ids)
        shipment = get_shipment(session, package.id)
        now = utcnow()
        if shipment is None:
            if package.is_click_and_collect or package.state not in SHIPPABLE_STATES:
                raise CommandRejected(_("Package %(number)s needs no shipment.", number=package.number))
            shipment = plan_shipment(session, package, {})
            if shipment is None:
                raise CommandRejected(_("No cargo company is managed by the OMS; add one in setup step 14."))
        elif shipment.status == Shipment.CREATED:
            raise CommandRejected(_("The shipment was created already (tracking number %(number)s).",
                                    number=shipment.tracking_number))
        elif shipment.status == Shipment.CREATING and shipment.lease_until and shipment.lease_until > now:
            raise CommandRejected(_("The shipment is being created right now."))
        else:
            shipment.status = Shipment.PENDING
            shipment.next_attempt_at = now
            shipment.lease_until = None
            shipment.updated_at = now
        session.add(PackageLog(package_id=package.id, from_state=package.state, to_state=package.state,
                               command=RETRY_COMMAND, user_id=user_id,
                               note=_("Shipment creation asked for again.")))
        shipment_id = shipment.id
        session.commit()
    except Exception:
        session.rollback()
        raise
    dispatch([shipment_id])
    found = session.get(Shipment, shipment_id, populate_existing=True)
    if found is None:  # deleted with its package meanwhile
        raise CommandRejected(_("The package's shipment is gone."))
    return found


def due_ids(session: Session, limit: int = 200, now: datetime | None = None) -> list[int]:
    """Shipments due for a try (waiting, failed with a retry time passed, or whose worker's lease ran out)."""
    now = now or utcnow()
    return list(session.scalars(
        select(Shipment.id).where(or_(
            and_(Shipment.status.in_((Shipment.PENDING, Shipment.FAILED)), Shipment.next_attempt_at <= now),
            and_(Shipment.status == Shipment.CREATING, Shipment.lease_until < now)))
        .order_by(Shipment.id).limit(limit)))


# Queue tasks -----------------------------------------------------------------------------------------------------


@huey.task()
def create_shipment_task(shipment_id: int) -> None:
    """Queue task: make one shipment at its cargo company; a failure is kept on the shipment, never raised."""
    with app_context():
        try:
            create_shipment(db.session, shipment_id)
        except Exception:  # a bug or a database hiccup: the lease runs out and the sweep tries again
            db.session.rollback()
            log.exception("creating shipment %s failed", shipment_id)


def dispatch(shipment_ids: list[int]) -> None:
    """Queue the creation of shipments a committed transaction recorded (inline when the queue is immediate)."""
    for shipment_id in shipment_ids:
        try:
            create_shipment_task(shipment_id)
        except Exception:  # a queue that is down must not fail the command: the sweep catches up
            log.exception("could not queue shipment %s; the sweep will pick it up", shipment_id)


def sweep(limit: int = 200) -> list[int]:
    """Queue every shipment due for a try; returns their ids."""
    with app_context():
        ids = due_ids(db.session, limit)
        db.session.commit()
    dispatch(ids)
    return ids


@huey.periodic_task(crontab(minute="*"))
def sweep_shipments() -> None:
    """Every minute: try again the shipments whose retry time has come or whose worker died."""
    try:
        ids = sweep()
    except Exception:  # the database may be down: next minute's sweep follows
        log.exception("shipment sweep failed")
        return
    if ids:
        log.info("shipment sweep queued %s shipment(s)", len(ids))
