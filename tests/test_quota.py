"""Stock location quota follows the vendor's rule: it counts the packages a location still has to pack.

Planning a package raises it, packing, refusing or cancelling lowers it, rescheduling brings it back,
and a SELECT_BY_QUOTA scenario stops planning at max_quota.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.errors import ValidationFailed
from portal.extensions import db
from portal.packages import commands, quota
from portal.packages.models import DenialReason
from portal.packages.states import State
from portal.scenarios import service as scenarios
from portal.scenarios.models import Scenario, ScenarioLocation
from portal.stores.models import StockLocation
from portal.sync.models import Channel


def run(package, slug, params=None):
    """Run a command as the system."""
    return commands.run_command(db.session, package.id, slug=slug, params=params or {}, user_id=None,
                                store_ids=None)


def quota_of(store) -> int:
    """The store's quota as stored now."""
    db.session.expire_all()
    return db.session.get(StockLocation, store.id).quota


def barcodes(package) -> dict:
    """Every item's barcode, as a scanner gives them."""
    return {"barcodes": [{"order_item": i.order_item, "barcode": i.barcode} for i in package.items]}


def test_only_packages_not_packed_yet_and_cancellation_waiting_count():
    assert [s.name for s in State if quota.counts(s)] == [
        "WAITING", "WAITING_REMOTE_ACTION", "PREPARING", "WAITING_FOR_TRANSFER", "CANCELLATION_WAITING"]
    assert quota.change_for(State.WAITING, State.PACKED) == -1
    assert quota.change_for(State.NEEDS_RESCHEDULING, State.WAITING) == 1
    assert quota.change_for(State.WAITING, State.PREPARING) == 0
    assert quota.change_for(None, State.WAITING) == 1


def test_packing_lowers_the_quota_and_the_pickup_steps_leave_it_alone(make):
    store = make.store()
    first, second = make.package(store=store), make.package(store=store)
    quota.recount(db.session)
    db.session.commit()
    assert quota_of(store) == 2

    run(first, "deallocate-package-reservations")  # Waiting -> Preparing: still to pack
    assert quota_of(store) == 2
    run(first, "complete-packaging-from-preparing", barcodes(first))
    assert quota_of(store) == 1
    run(first, "ready-for-customer-pickup")
    assert quota_of(store) == 1
    run(second, "complete-packaging-without-shipment")
    assert quota_of(store) == 0


def test_refusing_lowers_it_and_rescheduling_brings_it_back_in_the_packages_own_store(make):
    store, elsewhere = make.store(), make.store()
    package = make.package(store=store)
    make.package(store=elsewhere)
    quota.recount(db.session)
    db.session.commit()
    reason = db.session.scalar(select(DenialReason).where(DenialReason.is_active.is_(True)))

    run(package, "refuse-with-denial-reason-from-waiting", {"denial_reason": reason.id})
    assert (quota_of(store), quota_of(elsewhere)) == (0, 1)

    run(package, "reschedule-package")
    assert (quota_of(store), quota_of(elsewhere)) == (1, 1)


def test_a_failed_command_changes_no_quota_and_the_quota_never_goes_below_zero(make):
    store = make.store()
    package = make.package(store=store)  # never planned here: the quota is still 0
    with pytest.raises(ValidationFailed):
        run(package, "complete-packaging-from-waiting", {"barcodes": [{"order_item": 1, "barcode": "wrong"}]})
    assert quota_of(store) == 0

    run(package, "complete-packaging-without-shipment")
    assert quota_of(store) == 0


def test_recount_sets_each_location_to_its_packages_that_count(make):
    busy, quiet = make.store(), make.store()
    for state in (State.WAITING, State.PREPARING, State.CANCELLATION_WAITING, State.PACKED, State.DELIVERED):
        make.package(store=busy, state=state)
    make.package(store=quiet, state=State.SHIPPED)
    db.session.get(StockLocation, quiet.id).quota = 7  # drifted, say by a hand edit

    changed = quota.recount(db.session)
    db.session.commit()

    assert changed == 2 and (quota_of(busy), quota_of(quiet)) == (3, 0)
    assert quota.recount(db.session) == 0


def test_a_select_by_quota_scenario_plans_again_once_a_package_is_packed(make):
    store = make.store()
    store.max_quota = 1
    package = make.package(store=store)
    quota.recount(db.session)
    channel = Channel(omnitron_id=1, name="Web")
    db.session.add(channel)
    db.session.flush()
    scenario = Scenario(channel_id=channel.id, name="By quota", rules=[scenarios.SELECT_BY_QUOTA], is_active=True)
    db.session.add(scenario)
    db.session.flush()
    db.session.add(ScenarioLocation(scenario_id=scenario.id, stock_location_id=store.id, priority=1))
    db.session.commit()
    assert scenarios.plan_locations(db.session, scenario) == []  # full: 1 of 1

    run(package, "complete-packaging-without-shipment")

    db.session.expire_all()
    assert [location.id for location in scenarios.plan_locations(db.session, scenario)] == [store.id]
