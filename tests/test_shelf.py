"""Pickup shelf slots: slots per store, putting a ready package on one, moving it, freeing it on delivery or on any
command leaving Ready for Customer Pickup, shared slots, the audit rows, the API, and two staff taking one slot."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal.errors import CommandRejected, NotFound, ValidationFailed
from portal.extensions import db
from portal.packages import commands, shelf
from portal.packages.models import PackageLog
from portal.packages.shelf_models import ShelfAssignment
from portal.packages.states import State
from portal.sms import MemorySmsProvider
from tests.test_concurrency import at_once


def ready(make, store) -> tuple[int, str]:
    """A package of this store ready for pickup, and its code."""
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    code = re.search(r" is (\d+)\.", MemorySmsProvider.outbox[-1].body).group(1)
    return package.id, code


def logs(package_id: int, command: str) -> list[PackageLog]:
    """The package's audit rows of one command, oldest first."""
    return list(db.session.scalars(select(PackageLog).where(
        PackageLog.package_id == package_id, PackageLog.command == command).order_by(PackageLog.id)))


def current_rows(slot_id: int) -> int:
    """How many packages a slot holds now, counted in the database."""
    return db.session.scalar(select(func.count()).select_from(ShelfAssignment).where(
        ShelfAssignment.slot_id == slot_id, ShelfAssignment.released_at.is_(None)))


def test_a_ready_package_goes_on_a_scanned_slot_and_delivery_frees_it(app, make):
    store = make.store()
    user = make.user(stores=[store])
    slot = shelf.create_slot(db.session, store.id, label="A1", barcode="SHELF-A1", store_ids=None)
    package_id, code = ready(make, store)

    held = shelf.assign(db.session, package_id, barcode="SHELF-A1", user_id=user.id, store_ids=[store.id])

    assert held.slot_id == slot.id and held.assigned_by == user.id
    assert shelf.current_slots(db.session, [package_id]) == {package_id: slot}
    [row] = logs(package_id, shelf.ASSIGN)
    assert row.from_state == row.to_state == State.READY_FOR_CUSTOMER_PICKUP and "A1" in row.note
    commands.run_command(db.session, package_id, slug="self-service-package-delivery", params={"otp": code},
                         user_id=user.id, store_ids=[store.id])
    assert shelf.current(db.session, package_id) is None
    assert current_rows(slot.id) == 0
    assert len(logs(package_id, shelf.FREE)) == 1
    # The history stays: one row, released.
    [history] = db.session.scalars(select(ShelfAssignment).where(ShelfAssignment.package_id == package_id))
    assert history.released_at is not None and history.released_by == user.id


def test_any_command_leaving_ready_for_pickup_frees_the_slot(app, make):
    store = make.store()
    slot = shelf.create_slot(db.session, store.id, label="B2", store_ids=None)
    package_id, _code = ready(make, store)
    shelf.assign(db.session, package_id, slot_id=slot.id, user_id=None, store_ids=None)
    commands.run_command(db.session, package_id, slug="block-the-package-for-action-from-ready-for-customer-pickup",
                         params={"note": "ID check"}, user_id=None, store_ids=None)
    assert shelf.current(db.session, package_id) is None
    assert len(logs(package_id, shelf.FREE)) == 1


def test_moving_keeps_one_current_slot_and_is_audited(app, make):
    store = make.store()
    a1 = shelf.create_slot(db.session, store.id, label="A1", store_ids=None)
    a2 = shelf.create_slot(db.session, store.id, label="A2", store_ids=None)
    package_id, _code = ready(make, store)
    shelf.assign(db.session, package_id, slot_id=a1.id, user_id=None, store_ids=None)
    shelf.assign(db.session, package_id, barcode=a2.barcode, user_id=None, store_ids=None)
    shelf.assign(db.session, package_id, barcode=a2.barcode, user_id=None, store_ids=None)  # same slot: nothing

    assert current_rows(a1.id) == 0 and current_rows(a2.id) == 1
    [move] = logs(package_id, shelf.MOVE)
    assert "A1" in move.note and "A2" in move.note
    rows = shelf.shelf(db.session, store.id, None)
    assert [(r.slot.label, [a.package_id for a in r.assignments]) for r in rows] == [("A1", []), ("A2", [package_id])]


def test_a_taken_slot_is_refused_unless_the_store_shares_slots(app, make):
    store = make.store()
    slot = shelf.create_slot(db.session, store.id, label="C3", store_ids=None)
    first, _ = ready(make, store)
    second, _ = ready(make, store)
    shelf.assign(db.session, first, slot_id=slot.id, user_id=None, store_ids=None)

    with pytest.raises(CommandRejected, match="already holds"):
        shelf.assign(db.session, second, slot_id=slot.id, user_id=None, store_ids=None)
    assert current_rows(slot.id) == 1
    shelf.set_shared_slots(db.session, store.id, True)
    shelf.assign(db.session, second, slot_id=slot.id, user_id=None, store_ids=None)
    assert current_rows(slot.id) == 2


def test_the_database_refuses_a_second_exclusive_package_on_a_slot(app, make):
    store = make.store()
    slot = shelf.create_slot(db.session, store.id, label="D4", store_ids=None)
    first, _ = ready(make, store)
    second, _ = ready(make, store)
    shelf.assign(db.session, first, slot_id=slot.id, user_id=None, store_ids=None)
    db.session.add(ShelfAssignment(package_id=second, slot_id=slot.id, exclusive=True))
    with pytest.raises(Exception, match="(?i)unique"):
        db.session.commit()
    db.session.rollback()


def test_only_ready_packages_of_ones_stores_and_active_slots(app, make):
    store, other = make.store(), make.store()
    slot = shelf.create_slot(db.session, store.id, label="E5", store_ids=None)
    foreign = shelf.create_slot(db.session, other.id, label="E5", store_ids=None)
    waiting = make.package(store=store)
    package_id, _ = ready(make, store)
    with pytest.raises(CommandRejected):
        shelf.assign(db.session, waiting.id, slot_id=slot.id, user_id=None, store_ids=None)
    with pytest.raises(NotFound):
        shelf.assign(db.session, package_id, slot_id=slot.id, user_id=None, store_ids=[other.id])
    with pytest.raises(ValidationFailed):
        shelf.assign(db.session, package_id, slot_id=foreign.id, user_id=None, store_ids=None)
    shelf.update_slot(db.session, slot.id, is_active=False, store_ids=None)
    with pytest.raises(ValidationFailed):
        shelf.assign(db.session, package_id, barcode=slot.barcode, user_id=None, store_ids=None)


def test_slots_have_unique_barcodes_per_store_and_an_occupied_slot_stays_active(app, make):
    store, other = make.store(), make.store()
    slot = shelf.create_slot(db.session, store.id, label="F6", barcode="X-1", store_ids=None)
    shelf.create_slot(db.session, other.id, label="F6", barcode="X-1", store_ids=None)  # another store: fine
    with pytest.raises(ValidationFailed, match="barcode"):
        shelf.create_slot(db.session, store.id, label="F7", barcode="X-1", store_ids=None)
    with pytest.raises(ValidationFailed):
        shelf.create_slot(db.session, store.id, label=" ", store_ids=None)
    with pytest.raises(NotFound):
        shelf.create_slot(db.session, store.id, label="G1", store_ids=[other.id])
    package_id, _ = ready(make, store)
    shelf.assign(db.session, package_id, slot_id=slot.id, user_id=None, store_ids=None)
    with pytest.raises(CommandRejected):
        shelf.update_slot(db.session, slot.id, is_active=False, store_ids=None)
    renamed = shelf.update_slot(db.session, slot.id, label="F6 top", store_ids=None)
    assert renamed.label == "F6 top" and renamed.is_active


def test_free_by_hand(app, make):
    store = make.store()
    slot = shelf.create_slot(db.session, store.id, label="H8", store_ids=None)
    package_id, _ = ready(make, store)
    assert shelf.free(db.session, package_id, user_id=None, store_ids=None) is False
    shelf.assign(db.session, package_id, slot_id=slot.id, user_id=None, store_ids=None)
    assert shelf.free(db.session, package_id, user_id=None, store_ids=None) is True
    assert current_rows(slot.id) == 0 and len(logs(package_id, shelf.FREE)) == 1


def _two_staff_one_slot(app, make) -> None:
    """Rounds of two staff putting two packages on one free slot at the same moment: exactly one wins."""
    store = make.store()
    slot_id = shelf.create_slot(db.session, store.id, label="RACE", store_ids=None).id
    for _round in range(4):
        package_ids = [ready(make, store)[0], ready(make, store)[0]]
        outcomes = at_once(app, lambda i, ids=package_ids: shelf.assign(
            db.session, ids[i], slot_id=slot_id, user_id=None, store_ids=None), 2)
        won = [o for o in outcomes if isinstance(o, ShelfAssignment)]
        lost = [o for o in outcomes if not isinstance(o, ShelfAssignment)]
        assert len(won) == 1, outcomes
        assert all(isinstance(o, CommandRejected) for o in lost), outcomes
        db.session.expire_all()
        assert current_rows(slot_id) == 1
        for package_id in package_ids:
            shelf.free(db.session, package_id, user_id=None, store_ids=None)


@pytest.mark.postgres_only
def test_two_staff_taking_one_slot_at_once_on_postgresql(app, make):
    _two_staff_one_slot(app, make)


def test_two_staff_taking_one_slot_at_once_on_sqlite(app, make, database):
    if database.name != "sqlite":
        pytest.skip("the PostgreSQL race is test_two_staff_taking_one_slot_at_once_on_postgresql")
    _two_staff_one_slot(app, make)


API = "/api/v1/oms"


def token(user) -> dict:
    """The Authorization header of a new token of this user."""
    from portal.accounts import auth
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def test_api_managers_define_slots_and_staff_put_packages_on_them(client, make):
    store, other = make.store(), make.store()
    manager = token(make.user(role="brand_manager"))
    staff = token(make.user(stores=[store]))

    created = client.post(f"{API}/stores/{store.id}/shelf-slots/", json={"label": "A1", "barcode": "SHELF-A1"},
                          headers=manager)
    assert created.status_code == 201, created.json
    slot = created.json
    assert slot["label"] == "A1" and slot["store"] == store.id and slot["is_active"] is True
    assert client.post(f"{API}/stores/{store.id}/shelf-slots/", json={"label": "A2"}, headers=staff).status_code == 403
    dup = client.post(f"{API}/stores/{store.id}/shelf-slots/", json={"label": "A3", "barcode": "SHELF-A1"},
                      headers=manager)
    assert dup.status_code == 400 and "barcode" in dup.get_data(as_text=True)
    assert client.get(f"{API}/stores/{other.id}/shelf-slots/", headers=staff).status_code == 404
    assert [s["label"] for s in client.get(f"{API}/stores/{store.id}/shelf-slots/", headers=staff).json] == ["A1"]

    package_id, _ = ready(make, store)
    put = client.put(f"{API}/packages/{package_id}/shelf-slot/", json={"barcode": "SHELF-A1"}, headers=staff)
    assert put.status_code == 200, put.json
    assert put.json["slot_label"] == "A1" and put.json["since"].endswith("Z")
    view = client.get(f"{API}/stores/{store.id}/shelf/", headers=staff).json
    assert view["shared_slots_allowed"] is False
    assert [p["package"] for p in view["slots"][0]["packages"]] == [package_id]

    second, _ = ready(make, store)
    taken = client.put(f"{API}/packages/{second}/shelf-slot/", json={"slot": slot["id"]}, headers=staff)
    assert taken.status_code == 409
    shared = client.put(f"{API}/stores/{store.id}/shelf-settings/", json={"shared_slots_allowed": True},
                        headers=manager)
    assert shared.status_code == 200 and shared.json["shared_slots_allowed"] is True
    assert client.put(f"{API}/packages/{second}/shelf-slot/", json={"slot": slot["id"]},
                      headers=staff).status_code == 200

    busy = client.patch(f"{API}/shelf-slots/{slot['id']}/", json={"is_active": False}, headers=manager)
    assert busy.status_code == 409
    renamed = client.patch(f"{API}/shelf-slots/{slot['id']}/", json={"label": "A1 top"}, headers=manager)
    assert renamed.status_code == 200 and renamed.json["label"] == "A1 top"

    assert client.delete(f"{API}/packages/{package_id}/shelf-slot/", headers=staff).status_code == 204
    assert shelf.current(db.session, package_id) is None
    assert len(logs(package_id, shelf.FREE)) == 1


def test_api_refuses_other_stores_and_packages_not_ready(client, make):
    store, other = make.store(), make.store()
    outsider = token(make.user(stores=[other]))
    staff = token(make.user(stores=[store]))
    slot = shelf.create_slot(db.session, store.id, label="Z9", store_ids=None)
    package_id, _ = ready(make, store)
    waiting = make.package(store=store)
    assert client.put(f"{API}/packages/{package_id}/shelf-slot/", json={"slot": slot.id},
                      headers=outsider).status_code == 404
    assert client.get(f"{API}/stores/{store.id}/shelf/", headers=outsider).status_code == 404
    assert client.put(f"{API}/packages/{waiting.id}/shelf-slot/", json={"slot": slot.id},
                      headers=staff).status_code == 400
    assert client.put(f"{API}/packages/{package_id}/shelf-slot/", json={"barcode": "nope"},
                      headers=staff).status_code == 400
    assert client.patch(f"{API}/shelf-slots/{slot.id}/", json={"label": "x"}, headers=staff).status_code == 403
    assert client.get(f"{API}/stores/999999/shelf/", headers=token(make.user(role="admin"))).status_code == 404


def test_a_slot_without_a_barcode_gets_a_free_in_store_ean13(app, make):
    from portal.packages.barcodes import is_ean13
    store = make.store()
    first = shelf.create_slot(db.session, store.id, label="K1", store_ids=None)
    second = shelf.create_slot(db.session, store.id, label="K2", store_ids=None)
    assert is_ean13(first.barcode) and is_ean13(second.barcode) and first.barcode != second.barcode
    assert first.barcode.startswith("29")


def test_the_package_knows_its_shelf_location(app, make):
    store = make.store()
    slot = shelf.create_slot(db.session, store.id, label="L1", store_ids=None)
    package_id, _ = ready(make, store)
    shelf.assign(db.session, package_id, slot_id=slot.id, user_id=None, store_ids=None)
    db.session.expire_all()
    assert db.session.get(commands.Package, package_id).shelf_location == "L1"
    shelf.free(db.session, package_id, user_id=None, store_ids=None)
    db.session.expire_all()
    assert db.session.get(commands.Package, package_id).shelf_location == ""


HX = {"HX-Request": "true"}


def test_web_staff_scan_a_slot_on_the_package_page_and_see_it_in_the_handover_and_queue(client, make, auth_actions):
    store = make.store()
    make.user("clerk", stores=[store])
    slot = shelf.create_slot(db.session, store.id, label="A1", store_ids=None)
    package_id, _ = ready(make, store)
    auth_actions.login("clerk")

    page = client.get(f"/packages/{package_id}").get_data(as_text=True)
    assert 'id="shelf-barcode"' in page and "data-shelf-focus" in page
    answer = client.post(f"/packages/{package_id}/shelf", data={"barcode": slot.barcode}, headers=HX)
    assert answer.status_code == 200
    assert "On slot" in answer.get_data(as_text=True) and "A1" in answer.get_data(as_text=True)
    handover = client.get(f"/packages/{package_id}/commands/self-service-package-delivery").get_data(as_text=True)
    assert 'id="handover-shelf"' in handover and "Shelf A1" in handover
    queue = client.get("/packages?tab=pickup").get_data(as_text=True)
    assert 'data-shelf="A1"' in queue

    taken_by_other, _ = ready(make, store)
    refused = client.post(f"/packages/{taken_by_other}/shelf", data={"slot": slot.id}, headers=HX)
    assert refused.status_code == 409 and "already holds" in refused.get_data(as_text=True)
    freed = client.post(f"/packages/{package_id}/shelf/free", headers=HX)
    assert freed.status_code == 200 and shelf.current(db.session, package_id) is None


def test_web_the_shelf_view_and_slot_management(client, make, auth_actions):
    store, other = make.store(), make.store()
    make.user("boss", role="brand_manager")
    make.user("clerk", stores=[store])
    auth_actions.login("clerk")
    assert client.get(f"/packages/shelf?store={other.id}").status_code == 404
    assert client.post(f"/packages/shelf/{store.id}/slots", data={"label": "Z"}).status_code == 403
    auth_actions.logout()
    auth_actions.login("boss")
    added = client.post(f"/packages/shelf/{store.id}/slots", data={"label": "B7"}, headers=HX)
    assert added.status_code == 200 and 'data-slot="B7"' in added.get_data(as_text=True)
    slot = shelf.list_slots(db.session, store.id)[0]
    package_id, _ = ready(make, store)
    shelf.assign(db.session, package_id, slot_id=slot.id, user_id=None, store_ids=None)
    view = client.get(f"/packages/shelf?store={store.id}").get_data(as_text=True)
    assert 'data-package="' in view and "1 of 1 active slots" in view
    closing = client.post(f"/packages/shelf/slots/{slot.id}", data={"active": "0"}, headers=HX)
    assert closing.status_code == 409
    second = shelf.create_slot(db.session, store.id, label="B8", store_ids=None)
    moved = client.post(f"/packages/{package_id}/shelf", data={"slot": second.id, "from": "shelf"}, headers=HX)
    assert moved.status_code == 200 and shelf.current(db.session, package_id).slot_id == second.id
    labels = client.get(f"/packages/shelf/{store.id}/labels").get_data(as_text=True)
    assert "B7" in labels and "barcode-bars" in labels
    toggled = client.post(f"/packages/shelf/{store.id}/settings", data={"shared": "1"}, headers=HX)
    assert toggled.status_code == 200 and shelf.shared_slots_allowed(db.session, store.id)
