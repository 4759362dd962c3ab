"""The command engine: a vendor command moves a package along the flow, or refuses and changes nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.db_types import utcnow
from portal.errors import CommandRejected, ConcurrentChange, NotFound, ValidationFailed
from portal.extensions import db
from portal.packages import commands
from portal.packages.flow import VENDOR_FLOW_V1
from portal.packages.models import DenialReason, Package, PackageLog, Transition
from portal.packages.states import State


def run(package, slug, params=None, user=None, visibility=None, **kwargs):
    """Run a command by slug as a user (or the system) on every store."""
    return commands.run_command(db.session, package.id, slug=slug, params=params or {},
                                user_id=user.id if user else None, store_ids=None, visibility=visibility,
                                **kwargs)


def reload(package) -> Package:
    """The package as the database has it now."""
    db.session.expire_all()
    return db.session.get(Package, package.id)


def logs(package) -> list[PackageLog]:
    """The package's audit rows, oldest first."""
    return list(db.session.scalars(
        select(PackageLog).where(PackageLog.package_id == package.id).order_by(PackageLog.id)))


def barcodes(package, **overrides) -> list[dict]:
    """Every item's barcode as the API sends them; overrides map order_item -> barcode."""
    return [{"order_item": i.order_item, "barcode": overrides.get(str(i.order_item), i.barcode)}
            for i in package.items]


def needs_params(slug: str, package) -> dict:
    """The input a command needs to succeed on a fresh package."""
    if slug.startswith("complete-packaging-from"):
        return {"barcodes": barcodes(package)}
    if slug.startswith("refuse"):
        reason = db.session.scalar(select(DenialReason).where(DenialReason.is_active.is_(True)))
        return {"denial_reason": reason.id}
    return {}


# The vendor's flow, minus the commands whose handler refuses some delivery types.
FLOW = [(slug, code, src, dst) for slug, _name, code, src, dst, _vis in VENDOR_FLOW_V1
        if dst is not None and code not in ("READY_FOR_PICKUP", "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND",
                                            "SHIP_PACKAGE")]


@pytest.mark.parametrize("slug,code,source,destination", FLOW, ids=[row[0] for row in FLOW])
def test_each_vendor_command_moves_from_its_source_to_its_destination(make, slug, code, source, destination):
    clerk = make.user("clerk")
    package = make.package(state=source, click_collect=False)
    before = utcnow() - timedelta(seconds=5)

    result = run(package, slug, needs_params(slug, package), user=clerk)

    assert (result.from_state, result.to_state) == (source, destination)
    fresh = reload(package)
    assert fresh.state == destination
    assert fresh.version == 2
    [row] = logs(package)
    transition = db.session.scalar(select(Transition).where(Transition.slug == slug))
    assert (row.from_state, row.to_state, row.transition_id, row.command, row.user_id) == (
        source, destination, transition.id, slug, clerk.id)
    assert row.created_at >= before


def test_click_and_collect_walks_from_waiting_to_delivered_with_one_audit_row_per_step(make, sms):
    clerk = make.user("clerk")
    package = make.package(state=State.WAITING)

    run(package, "complete-packaging-without-shipment", user=clerk)
    run(package, "ready-for-customer-pickup", user=clerk)
    code = sms.outbox[-1].body.split(" is ")[1][:6]
    run(package, "self-service-package-delivery", {"otp": code}, user=clerk)

    assert reload(package).state == State.DELIVERED
    assert [(r.from_state, r.to_state, r.command) for r in logs(package)] == [
        (State.WAITING, State.PACKED, "complete-packaging-without-shipment"),
        (State.PACKED, State.READY_FOR_CUSTOMER_PICKUP, "ready-for-customer-pickup"),
        (State.READY_FOR_CUSTOMER_PICKUP, State.DELIVERED, "self-service-package-delivery"),
    ]
    assert all(r.user_id == clerk.id for r in logs(package))


def test_a_cargo_package_is_shipped_with_its_tracking_number(make):
    package = make.package(state=State.PACKED, click_collect=False)

    run(package, "ship-the-package", {"tracking_number": "TRK123"})

    assert reload(package).state == State.SHIPPED
    assert logs(package)[0].note == "Tracking number TRK123"


@pytest.mark.parametrize("slug,state", [
    ("complete-packaging-without-shipment", State.PREPARING),
    ("ready-for-customer-pickup", State.WAITING),
    ("self-service-package-delivery", State.PACKED),
    ("unblock-the-package-for-action", State.WAITING),
    ("deallocate-package-reservations", State.DELIVERED),
])
def test_a_command_from_the_wrong_state_is_rejected_and_changes_nothing(make, sms, slug, state):
    package = make.package(state=state)

    with pytest.raises(CommandRejected) as caught:
        run(package, slug, {"otp": "123456"})

    assert "runs on" in caught.value.message
    fresh = reload(package)
    assert (fresh.state, fresh.version) == (state, 1)
    assert logs(package) == []
    assert sms.outbox == []


@pytest.mark.parametrize("state,block_slug", [
    (State.WAITING, "block-the-package-for-action-from-waiting"),
    (State.PACKED, "block-the-package-for-action-from-packed"),
])
def test_unblock_returns_the_package_to_the_state_it_had_before_the_block(make, state, block_slug):
    admin = make.user("admin", role="admin")
    package = make.package(state=state)

    run(package, block_slug, {"reason": "Customer called"}, user=admin)
    blocked = reload(package)
    assert blocked.state == State.BLOCKED
    assert blocked.state_before_block == state

    run(package, "unblock-the-package-for-action", user=admin)

    fresh = reload(package)
    assert fresh.state == state
    assert fresh.state_before_block is None
    assert [(r.from_state, r.to_state, r.note) for r in logs(package)] == [
        (state, State.BLOCKED, "Customer called"), (State.BLOCKED, state, "")]


def test_refuse_records_an_active_denial_reason(make):
    package = make.package(state=State.WAITING)
    reason = db.session.scalar(select(DenialReason).where(DenialReason.remote_id == "DAMAGED"))

    run(package, "refuse-with-denial-reason-from-waiting", {"denial_reason": reason.id})

    fresh = reload(package)
    assert fresh.state == State.NEEDS_RESCHEDULING
    assert fresh.denial_reason_id == reason.id
    assert logs(package)[0].note == "Product damaged"


@pytest.mark.parametrize("given", ["inactive", "", "999999", "abc"])
def test_refuse_without_an_active_denial_reason_is_refused(make, given):
    package = make.package(state=State.WAITING)
    inactive = db.session.scalar(select(DenialReason).where(DenialReason.is_active.is_(False)))
    assert inactive is not None, "the migration installs one inactive reason"
    value = inactive.id if given == "inactive" else given

    with pytest.raises(ValidationFailed) as caught:
        run(package, "refuse-with-denial-reason-from-waiting", {"denial_reason": value})

    assert caught.value.field == "denial_reason"
    fresh = reload(package)
    assert (fresh.state, fresh.denial_reason_id) == (State.WAITING, None)
    assert logs(package) == []


@pytest.mark.parametrize("state", [State.WAITING, State.PREPARING, State.READY_FOR_PACKAGING])
def test_complete_packaging_with_every_barcode_right_packs_the_package(make, state):
    package = make.package(state=state, items=3, click_collect=False)
    slug = {State.WAITING: "complete-packaging-from-waiting", State.PREPARING: "complete-packaging-from-preparing",
            State.READY_FOR_PACKAGING: "complete-packaging-from-ready-for-packaging"}[state]

    run(package, slug, {"barcodes": barcodes(package)})

    assert reload(package).state == State.PACKED


def test_complete_packaging_accepts_a_single_barcode_object_for_a_one_item_package(make):
    package = make.package(items=1, click_collect=False)
    item = package.items[0]

    run(package, "complete-packaging-from-waiting", {"barcodes": {"order_item": item.order_item,
                                                                 "barcode": item.barcode}})

    assert reload(package).state == State.PACKED


def _complete_packaging_refused(package, given) -> ValidationFailed:
    """Run Complete Packaging with the given barcodes, expect ValidationFailed, check nothing changed."""
    with pytest.raises(ValidationFailed) as caught:
        run(package, "complete-packaging-from-waiting", {"barcodes": given})
    fresh = reload(package)
    assert (fresh.state, fresh.version) == (State.WAITING, 1)
    assert logs(package) == []
    return caught.value


def test_complete_packaging_with_a_missing_barcode_names_the_missing_item(make):
    package = make.package(items=3, click_collect=False)

    error = _complete_packaging_refused(package, barcodes(package)[:2])

    assert error.field == "barcodes"
    assert "Item 3" in error.message
    assert error.details == {"missing": [package.items[2].order_item]}


def test_complete_packaging_with_a_mismatched_barcode_is_refused(make):
    package = make.package(items=2, click_collect=False)
    second = package.items[1]

    error = _complete_packaging_refused(package, barcodes(package, **{str(second.order_item): "0000000000000"}))

    assert "Barcode does not match Item 2" in error.message
    assert error.details == {"mismatched": [second.order_item]}


def test_complete_packaging_with_an_unknown_order_item_is_refused(make):
    package = make.package(items=1, click_collect=False)

    error = _complete_packaging_refused(package, barcodes(package) + [{"order_item": 424242, "barcode": "1"}])

    assert "424242" in error.message


@pytest.mark.parametrize("given", [None, [], "8680000", [{"barcode": "x"}], [{"order_item": "x", "barcode": "1"}]])
def test_complete_packaging_with_malformed_barcodes_is_a_validation_error(make, given):
    package = make.package(items=1, click_collect=False)

    _complete_packaging_refused(package, given)


@pytest.mark.parametrize("state", [State.PACKED, State.SHIPPED, State.READY_FOR_CUSTOMER_PICKUP])
def test_complete_packaging_from_a_later_state_is_refused(make, state):
    package = make.package(state=state, click_collect=False)

    with pytest.raises(CommandRejected):
        run(package, "complete-packaging-from-waiting", {"barcodes": barcodes(package)})

    assert reload(package).state == state


def test_ready_for_pickup_is_refused_for_a_cargo_package(make, sms):
    package = make.package(state=State.PACKED, click_collect=False)

    with pytest.raises(CommandRejected) as caught:
        run(package, "ready-for-customer-pickup")

    assert "click & collect" in caught.value.message
    assert reload(package).state == State.PACKED
    assert sms.outbox == []


def test_shipping_a_click_and_collect_package_is_refused(make):
    package = make.package(state=State.PACKED, click_collect=True)

    with pytest.raises(CommandRejected):
        run(package, "ship-the-package")

    assert reload(package).state == State.PACKED


def slugs(package, visibility) -> list[str]:
    """The slugs available_transitions offers for a package on a screen."""
    return [t.slug for t in commands.available_transitions(db.session, reload(package), visibility)]


def test_staff_do_not_see_the_web_only_block_command(make):
    package = make.package(state=State.WAITING)

    instore = slugs(package, "INSTORE")
    web = slugs(package, "OMS_WEB")

    assert "block-the-package-for-action-from-waiting" not in instore
    assert "block-the-package-for-action-from-waiting" in web
    assert "complete-packaging-without-shipment" in instore
    assert set(instore) < set(web)


def test_available_commands_follow_the_state_and_the_delivery_type(make):
    click_collect = make.package(state=State.PACKED, click_collect=True)
    cargo = make.package(state=State.PACKED, click_collect=False)

    assert slugs(click_collect, "INSTORE") == ["ready-for-customer-pickup"]
    assert slugs(cargo, "INSTORE") == ["ship-the-package"]
    assert slugs(make.package(state=State.DELIVERED), "OMS_WEB") == []


def test_a_command_hidden_from_a_screen_cannot_be_run_from_it(make):
    package = make.package(state=State.WAITING)

    with pytest.raises(CommandRejected):
        run(package, "block-the-package-for-action-from-waiting", visibility="INSTORE")

    assert reload(package).state == State.WAITING


def test_a_switched_off_command_is_neither_offered_nor_run(make):
    package = make.package(state=State.WAITING)
    transition = db.session.scalar(select(Transition).where(Transition.slug == "deallocate-package-reservations"))
    transition.is_active = False
    db.session.commit()

    assert "deallocate-package-reservations" not in slugs(package, "OMS_WEB")
    with pytest.raises(ValidationFailed):
        run(package, "deallocate-package-reservations")
    assert reload(package).state == State.WAITING


def test_the_engine_picks_the_handler_by_command_code_not_by_slug(make):
    """A new Transition row reusing an existing code gets that code's behaviour (barcode checks here)."""
    db.session.add(Transition(name="Pack at the counter", command_code="COMPLETE_PACKAGING",
                              slug="pack-at-the-counter", source_state=State.WAITING_REMOTE_ACTION,
                              destination_state=State.PACKED, visibility=["INSTORE"]))
    db.session.commit()
    package = make.package(state=State.WAITING_REMOTE_ACTION, click_collect=False)

    assert "pack-at-the-counter" in slugs(package, "INSTORE")
    with pytest.raises(ValidationFailed):
        run(package, "pack-at-the-counter", {"barcodes": []})
    run(package, "pack-at-the-counter", {"barcodes": barcodes(package)})

    assert reload(package).state == State.PACKED
    assert logs(package)[0].command == "pack-at-the-counter"


def test_a_transition_with_an_unknown_command_code_is_rejected_and_not_offered(make):
    db.session.add(Transition(name="Teleport", command_code="TELEPORT_PACKAGE", slug="teleport",
                              source_state=State.WAITING, destination_state=State.DELIVERED,
                              visibility=["OMS_WEB", "INSTORE"]))
    db.session.commit()
    package = make.package(state=State.WAITING)

    assert "teleport" not in slugs(package, "OMS_WEB")
    with pytest.raises(CommandRejected) as caught:
        run(package, "teleport")

    assert "TELEPORT_PACKAGE" in caught.value.message
    assert reload(package).state == State.WAITING


@pytest.mark.parametrize("kwargs,field", [
    ({}, "transition"), ({"slug": "no-such-command"}, "slug"), ({"transition_id": "abc"}, "transition"),
    ({"transition_id": 999999}, "transition"),
])
def test_naming_no_command_or_an_unknown_one_is_a_validation_error(make, kwargs, field):
    package = make.package()

    with pytest.raises(ValidationFailed) as caught:
        commands.run_command(db.session, package.id, user_id=None, store_ids=None, **kwargs)

    assert caught.value.field == field


def test_transition_id_and_slug_must_name_the_same_command(make):
    package = make.package()
    deallocate = db.session.scalar(select(Transition).where(Transition.slug == "deallocate-package-reservations"))

    with pytest.raises(ValidationFailed):
        commands.run_command(db.session, package.id, transition_id=deallocate.id,
                             slug="complete-packaging-without-shipment", user_id=None, store_ids=None)
    commands.run_command(db.session, package.id, transition_id=deallocate.id,
                         slug="deallocate-package-reservations", user_id=None, store_ids=None)

    assert reload(package).state == State.PREPARING


def test_a_package_outside_the_actors_stores_is_not_found(make):
    mine, theirs = make.store(), make.store()
    package = make.package(store=theirs)

    with pytest.raises(NotFound):
        commands.run_command(db.session, package.id, slug="deallocate-package-reservations", user_id=None,
                             store_ids=[mine.id])
    assert reload(package).state == State.WAITING


def test_a_stale_version_is_a_concurrent_change(make):
    package = make.package()
    run(package, "deallocate-package-reservations")

    with pytest.raises(ConcurrentChange):
        run(package, "complete-packaging-from-preparing", {"barcodes": barcodes(package)}, expected_version=1)

    fresh = reload(package)
    assert (fresh.state, fresh.version) == (State.PREPARING, 2)
    assert db.session.scalar(select(func.count()).select_from(PackageLog)) == 1
