"""The tracking poll: a background run (kind "shipment_tracking") that asks the cargo companies where the live
shipments are and moves their packages through the command door (Shipped, Attempted Delivery, Delivered,
Delivery Failed), resumable and idempotent.

A run first tries again the shipments due for a retry (portal.packages.shipments), then walks the created
shipments of packages still on their way, by id, a slice at a time: it asks each slice's cargo companies for
the states (one call per company), writes what they said on the shipments and commits with the run's cursor
(runs.save_progress), then runs the commands that bring each package to the state its shipment is in. The
commands are the vendor's ("Ship The Package", "Update The Package's Shipment Status"), found in the
transitions table, so an admin's changes to the flow hold. A package already in its shipment's state is left
alone: polling the same state twice changes nothing.
"""
from __future__ import annotations

import logging
from collections import defaultdict, deque
from dataclasses import dataclass, field

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from portal.cargo import clients
from portal.cargo import service as cargo
from portal.db_types import utcnow
from portal.errors import DomainError
from portal.packages import commands, shipments
from portal.packages.models import Package, Transition
from portal.packages.shipment_models import Shipment, ShipmentTrackingRun
from portal.packages.states import State
from portal.runs import service as runs

log = logging.getLogger(__name__)

KIND = "shipment_tracking"
SLICE = 200
# The package state each tracking state means; "created" (label printed, not picked up yet) moves nothing.
STATE_OF = {
    clients.IN_TRANSIT: State.SHIPPED,
    clients.ATTEMPTED_DELIVERY: State.ATTEMPTED_DELIVERY,
    clients.DELIVERED: State.DELIVERED,
    clients.DELIVERY_FAILED: State.DELIVERY_FAILED,
}
# The commands the poll may run: the vendor's ship and update shipment status.
COMMAND_CODES = ("SHIP_PACKAGE", "UPDATE_SHIPMENT_STATUS")
ON_THE_WAY = (State.PACKED, State.SHIPPED, State.ATTEMPTED_DELIVERY)


def route(session: Session, from_state: int, to_state: int) -> list[Transition]:
    """The shortest chain of active ship / shipment-status commands from one state to another ([] if none)."""
    if from_state == to_state:
        return []
    edges: dict[int, list[Transition]] = defaultdict(list)
    for transition in session.scalars(select(Transition).where(
            Transition.command_code.in_(COMMAND_CODES), Transition.is_active.is_(True),
            Transition.destination_state.is_not(None)).order_by(Transition.position, Transition.id)):
        edges[transition.source_state].append(transition)
    came_from: dict[int, Transition] = {}
    seen, queue = {from_state}, deque([from_state])
    while queue:
        state = queue.popleft()
        for transition in edges.get(state, []):
            target = transition.destination_state
            if target is None or target in seen:
                continue
            seen.add(target)
            came_from[target] = transition
            if target == to_state:
                chain = [transition]
                while chain[0].source_state != from_state:
                    chain.insert(0, came_from[chain[0].source_state])
                return chain
            queue.append(target)
    return []


def follow(session: Session, package_id: int, tracking_status: str, tracking_number: str) -> int:
    """Run the commands that bring a package to its shipment's state; returns how many ran (0: nothing to do).

    A refused command (an admin switched it off, someone moved the package meanwhile) stops the chain; the
    next poll tries again from wherever the package is.
    """
    target = STATE_OF.get(tracking_status)
    package = session.get(Package, package_id, populate_existing=True)
    if target is None or package is None or package.state == target:
        session.rollback()
        return 0
    chain = route(session, package.state, target)
    session.rollback()  # end the read transaction: each command takes the row lock in its own
    moved = 0
    for transition in chain:
        try:
            commands.run_command(session, package_id, slug=transition.slug, user_id=None, store_ids=None,
                                 params={"tracking_number": tracking_number})
        except DomainError as exc:
            log.warning("tracking: %s on package %s refused: %s", transition.slug, package_id, exc)
            break
        moved += 1
    return moved


@dataclass
class SliceResult:
    """What one slice did, the moves to make after its commit, and where the next one starts (None: the end)."""

    checked: int = 0
    errors: int = 0
    after: int | None = None
    to_follow: list[tuple[int, str, str]] = field(default_factory=list)  # (package id, tracking status, number)


def live_shipments(session: Session, after: int, limit: int) -> list[Shipment]:
    """Created shipments whose packages are still on their way (or whose failure the cargo company may undo)."""
    return list(session.scalars(
        select(Shipment).join(Package, Package.id == Shipment.package_id)
        .where(Shipment.status == Shipment.CREATED, Shipment.id > after,
               or_(Package.state.in_(ON_THE_WAY),
                   and_(Package.state == State.DELIVERY_FAILED, Shipment.tracking_status != clients.DELIVERY_FAILED)))
        .order_by(Shipment.id).limit(limit)))


def poll_slice(session: Session, after: int, limit: int = SLICE) -> SliceResult:
    """Ask the cargo companies about one slice of live shipments and write their states (not committed)."""
    rows = live_shipments(session, after, limit)
    result = SliceResult(checked=len(rows), after=rows[-1].id if len(rows) == limit else None)
    by_company: dict[int | None, list[Shipment]] = defaultdict(list)
    for shipment in rows:
        by_company[shipment.cargo_company_id].append(shipment)
    now = utcnow()
    for group in by_company.values():
        company = group[0].cargo_company
        try:
            if company is None:
                raise clients.CargoError(_("The shipment's cargo company was removed."), retryable=False)
            client = clients.client_for(current_app, company, cargo.read_conf(company))
            states = client.track([s.tracking_number for s in group])
        except (clients.CargoError, ValueError) as exc:
            result.errors += len(group)
            log.warning("tracking: %s shipment(s) of %s not polled: %s", len(group),
                        company.name if company else "?", exc)
            continue
        for shipment in group:
            state = states.get(shipment.tracking_number)
            if state is None:
                continue
            if shipment.tracking_status != state.status:
                shipment.tracking_status = state.status
                shipment.updated_at = now
            shipment.tracked_at = now
            if state.status == clients.IN_TRANSIT and shipment.shipped_at is None:
                shipment.shipped_at = now
            target = STATE_OF.get(state.status)
            if target is not None and target != shipment_package_state(session, shipment):
                result.to_follow.append((shipment.package_id, state.status, shipment.tracking_number))
    return result


def shipment_package_state(session: Session, shipment: Shipment) -> int | None:
    """The state of a shipment's package."""
    return session.scalar(select(Package.state).where(Package.id == shipment.package_id))


def step(session: Session, run_id: int, token: str, *, limit: int = SLICE) -> None:
    """Carry a tracking run out from its cursor (the run core's step for kind "shipment_tracking")."""
    if not runs.claim(session, ShipmentTrackingRun, run_id, token):
        return
    run = session.get(ShipmentTrackingRun, run_id, populate_existing=True)
    if run is None:
        return
    cursor = dict(run.cursor or {})
    created, checked, moved, errors = run.created_shipments, run.checked, run.moved, run.errors
    try:
        if not cursor.get("retried"):
            for shipment_id in shipments.due_ids(session, limit):
                shipment = shipments.create_shipment(session, shipment_id)
                if shipment is not None and shipment.status == Shipment.CREATED:
                    created += 1
                # A heartbeat per try: a slow cargo service must not make the run look dead.
                runs.save_progress(session, ShipmentTrackingRun, run_id, token, created_shipments=created)
            cursor = {"retried": True, "after": 0}
            runs.save_progress(session, ShipmentTrackingRun, run_id, token, created_shipments=created,
                               cursor=cursor)
        after = int(cursor.get("after") or 0)
        while True:
            result = poll_slice(session, after, limit)
            checked, errors = checked + result.checked, errors + result.errors
            next_after = result.after
            cursor = {"retried": True, "after": next_after if next_after is not None else after}
            runs.save_progress(session, ShipmentTrackingRun, run_id, token, checked=checked, errors=errors,
                               cursor=cursor, progress={"done": checked,
                                                        "total": checked + (limit if next_after else 0)})
            for package_id, status, number in result.to_follow:
                moved += follow(session, package_id, status, number)
            runs.save_progress(session, ShipmentTrackingRun, run_id, token, moved=moved)
            if next_after is None:
                break
            after = next_after
        runs.finish(session, ShipmentTrackingRun, run_id, token, progress={"done": checked, "total": checked})
    except runs.Superseded:
        return
    except Exception as exc:  # the run must end failed with a message, not stay running
        log.exception("shipment tracking run %s failed", run_id)
        session.rollback()
        runs.fail(session, KIND, run_id, token, _("The tracking poll stopped (%(error)s); start it again to carry "
                                                  "on.", error=exc.__class__.__name__))


runs.register(runs.RunKind(KIND, ShipmentTrackingRun, step=step))


def start_tracking(session: Session, *, user_id: int | None = None) -> ShipmentTrackingRun:
    """Record a tracking run and queue it; returns it (already finished when the queue runs tasks inline)."""
    run = ShipmentTrackingRun(task_id=runs.new_token(), started_by_id=user_id, cursor={}, progress={},
                              created_shipments=0, checked=0, moved=0, errors=0)
    session.add(run)
    session.commit()
    return runs.queue(session, KIND, run)
