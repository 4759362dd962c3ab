"""Packing in any order: the packing screen, its scans, taps, "not found" and the one-tap finish."""
from __future__ import annotations

import re

from sqlalchemy import select

from portal.extensions import db
from portal.packages import commands, packing
from portal.packages.models import Package, PackageLog, PackingScan
from portal.packages.states import State
from tests.floor import HX, text


def three_lines(make, store) -> Package:
    """A Waiting package: a shirt, two of a belt, and a second shirt of the same name with its own barcode."""
    package = make.package(store=store, state=State.WAITING, items=3, click_collect=False)
    shirt, belt, other_shirt = package.items
    shirt.name = other_shirt.name = "Linen shirt"
    belt.name, belt.quantity = "Leather belt", 2
    db.session.commit()
    return package


def scan(client, package, barcode: str):
    """One scan from the packing screen, as htmx sends it."""
    return client.post(f"/packages/{package.id}/pack/scan", data={"barcode": barcode}, headers=HX)


def ticks(package) -> dict[int, tuple[int, int]]:
    """item id -> (scanned, by hand), from the table."""
    db.session.expire_all()
    return {row.package_item_id: (row.scanned, row.by_hand) for row in db.session.scalars(
        select(PackingScan).where(PackingScan.package_id == package.id))}


def state_of(package) -> int:
    """The package's state in the database."""
    db.session.expire_all()
    return db.session.get(Package, package.id).state


def last_log(package) -> PackageLog:
    """The package's newest audit row."""
    db.session.expire_all()
    return db.session.scalars(select(PackageLog).where(PackageLog.package_id == package.id)
                              .order_by(PackageLog.id.desc())).first()


def test_scans_in_any_order_tick_lines_and_count_up_quantities(client, make, store, zeynep):
    package = three_lines(make, store)
    shirt, belt, other_shirt = package.items
    page = client.get(f"/packages/{package.id}/pack")
    assert page.status_code == 200 and "0 of 4 items" in text(page)

    answer = scan(client, package, other_shirt.barcode)  # the last line first
    body = text(answer)
    assert answer.status_code == 200 and "Linen shirt ticked. 1 of 4 items." in body
    assert f'id="packing-line-{other_shirt.id}"' in body and "is-done" in body
    # Only the changed parts: the feedback, that one line and the counter.
    assert f'id="packing-line-{shirt.id}"' not in body and f'id="packing-line-{belt.id}"' not in body
    assert 'id="packing-progress" class="packing-progress" hx-swap-oob="true"' in body
    assert "packing-tick" in answer.headers["HX-Trigger"]

    first_belt = text(scan(client, package, belt.barcode))
    assert "1 of 2" in first_belt and "is-partial" in first_belt and "2 of 4 items" in first_belt
    assert "2 of 2" in text(scan(client, package, belt.barcode))
    assert ticks(package) == {shirt.id: (0, 0), belt.id: (2, 0), other_shirt.id: (1, 0)}
    assert state_of(package) == State.WAITING


def test_a_barcode_not_in_the_package_is_refused_with_its_text_and_nothing_changes(client, make, store, zeynep):
    package = three_lines(make, store)
    client.get(f"/packages/{package.id}/pack")
    answer = scan(client, package, "8690000000001")
    assert answer.status_code == 422
    assert "8690000000001 is not in this package." in text(answer)
    assert "packing-refused" in answer.headers["HX-Trigger"]
    assert "packing-line-" not in text(answer)  # no line changes
    assert set(ticks(package).values()) == {(0, 0)}


def test_a_line_already_ticked_refuses_one_more_scan(client, make, store, zeynep):
    package = three_lines(make, store)
    shirt = package.items[0]
    assert scan(client, package, shirt.barcode).status_code == 200
    again = scan(client, package, shirt.barcode)
    assert again.status_code == 422 and "Linen shirt is already ticked (1 of 1)." in text(again)
    assert ticks(package)[shirt.id] == (1, 0)


def test_ticks_survive_a_reload(client, make, store, zeynep):
    package = three_lines(make, store)
    belt = package.items[1]
    scan(client, package, belt.barcode)
    page = text(client.get(f"/packages/{package.id}/pack"))
    assert "1 of 4 items" in page
    line = re.search(rf'<li id="packing-line-{belt.id}".*?</li>', page, re.S).group(0)
    assert "is-partial" in line and "1 of 2" in line


def test_the_scan_argument_ticks_the_first_item_then_leaves_the_url(client, make, store, zeynep):
    package = three_lines(make, store)
    shirt = package.items[0]
    opened = client.get(f"/packages/{package.id}/pack?scan={shirt.barcode}")
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/packages/{package.id}/pack")
    page = text(client.get(f"/packages/{package.id}/pack"))
    assert "Linen shirt ticked. 1 of 4 items." in page
    assert ticks(package)[shirt.id] == (1, 0)
    client.get(f"/packages/{package.id}/pack?scan=nope")
    assert "nope is not in this package." in text(client.get(f"/packages/{package.id}/pack"))


def test_every_line_ticked_finishes_with_one_tap_and_the_audit_names_the_hand_ticks(client, make, store, zeynep):
    package = three_lines(make, store)
    shirt, belt, other_shirt = package.items
    scan(client, package, belt.barcode)
    scan(client, package, other_shirt.barcode)
    hand = client.post(f"/packages/{package.id}/pack/items/{belt.id}/tick", headers=HX)
    assert hand.status_code == 200 and "Leather belt ticked by hand. 3 of 4 items." in text(hand)
    assert "All ticked" not in text(hand)
    early = client.post(f"/packages/{package.id}/pack/complete", headers=HX)
    assert state_of(package) == State.WAITING and early.headers["HX-Redirect"].endswith("/pack")

    last = scan(client, package, shirt.barcode)
    assert "4 of 4 items" in text(last) and "All ticked: finish packing" in text(last)
    done = client.post(f"/packages/{package.id}/pack/complete", headers=HX)
    assert done.headers["HX-Redirect"] == f"/packages/{package.id}"
    assert state_of(package) == State.PACKED
    log = last_log(package)
    assert log.command == "complete-packaging-from-waiting" and log.user_id == zeynep.id
    assert log.note == "Scanned: Linen shirt, Leather belt ×1, Linen shirt. Ticked by hand: Leather belt ×1."
    assert ticks(package) == {}  # the ticks are forgotten once packed


def test_a_hand_tick_on_a_full_line_is_refused(client, make, store, zeynep):
    package = three_lines(make, store)
    shirt = package.items[0]
    client.post(f"/packages/{package.id}/pack/items/{shirt.id}/tick", headers=HX)
    again = client.post(f"/packages/{package.id}/pack/items/{shirt.id}/tick", headers=HX)
    assert again.status_code == 422 and ticks(package)[shirt.id] == (0, 1)


def test_an_item_not_found_refuses_the_package_for_rescheduling(client, make, store, zeynep):
    package = three_lines(make, store)
    belt = package.items[1]
    scan(client, package, package.items[0].barcode)
    question = client.get(f"/packages/{package.id}/pack/items/{belt.id}/not-found", headers=HX)
    assert "needs rescheduling" in text(question) and "Product not found in store" in text(question)
    assert state_of(package) == State.WAITING
    done = client.post(f"/packages/{package.id}/pack/items/{belt.id}/not-found", headers=HX)
    assert done.headers["HX-Redirect"] == f"/packages/{package.id}"
    assert state_of(package) == State.NEEDS_RESCHEDULING
    log = last_log(package)
    assert log.command == "refuse-with-denial-reason-from-waiting"
    assert log.note == "Product not found in store: Leather belt"
    assert ticks(package) == {}


def test_a_package_not_waiting_to_be_packed_goes_back_to_its_page(client, make, store, zeynep):
    package = make.package(store=store, state=State.PACKED)
    opened = client.get(f"/packages/{package.id}/pack")
    assert opened.status_code == 302 and opened.headers["Location"].endswith(f"/packages/{package.id}")
    refused = scan(client, package, package.items[0].barcode)
    assert refused.status_code == 422 and "not waiting to be packed" in text(refused)


def test_another_stores_package_is_not_found(client, make, store, zeynep):
    other = make.package(store=make.store())
    assert client.get(f"/packages/{other.id}/pack").status_code == 404
    assert scan(client, other, other.items[0].barcode).status_code == 404


def test_two_tablets_cannot_tick_more_units_than_a_line_has(make, store):
    package = three_lines(make, store)
    shirt = package.items[0]
    first = packing.scan(db.session, package.id, shirt.barcode, store_ids=None, visibility="INSTORE")
    assert first.line.done == 1
    # A stale view of the line (another tablet read it before this scan) cannot tick past its quantity.
    stale = packing.load(db.session, package.id, None, "INSTORE")
    stale.lines[0].scanned = 0
    assert packing._bump(db.session, stale, stale.lines[0], by_hand=False) is False
    assert ticks(package)[shirt.id] == (1, 0)


def test_the_api_packs_without_the_screen_and_leaves_its_note_empty(make, store):
    package = three_lines(make, store)
    commands.run_command(db.session, package.id, slug="complete-packaging-from-waiting", user_id=None, store_ids=None,
                         params={"barcodes": [{"order_item": i.order_item, "barcode": i.barcode}
                                              for i in package.items]})
    assert state_of(package) == State.PACKED and last_log(package).note == ""


def test_the_demo_data_has_quantities_above_one_and_same_named_items_with_their_own_barcodes(app):
    from portal.packages.models import PackageItem
    from portal.seed import seed_packages, seed_stores, seed_users

    seed_stores(db.session)
    seed_users(db.session)
    seed_packages(db.session, count=12)
    items = list(db.session.scalars(select(PackageItem)))
    assert any(item.quantity > 1 for item in items)
    by_package: dict[tuple[int, str], set[str]] = {}
    for item in items:
        by_package.setdefault((item.package_id, item.name), set()).add(item.barcode)
    assert any(len(barcodes) > 1 for barcodes in by_package.values())


def test_start_over_removes_every_tick_but_only_while_the_package_waits_to_be_packed(client, make, store, zeynep):
    package = three_lines(make, store)
    shirt = package.items[0]
    scan(client, package, shirt.barcode)
    client.post(f"/packages/{package.id}/pack/items/{package.items[1].id}/tick", headers=HX)
    assert "Start over" in text(client.get(f"/packages/{package.id}/pack"))
    reset = client.post(f"/packages/{package.id}/pack/reset", headers=HX)
    assert reset.headers["HX-Redirect"] == f"/packages/{package.id}/pack"
    page = text(client.get(f"/packages/{package.id}/pack"))
    assert "Every tick was removed" in page and "0 of 4 items" in page
    assert set(ticks(package).values()) == {(0, 0)}
