"""The work queue on the staff home: tab counts, oldest-first cards with due times, and the one scan box."""
from __future__ import annotations

import re
from datetime import timedelta

from portal.db_types import utcnow
from portal.extensions import db
from portal.outbox.models import OutboxMessage
from portal.packages import work_queue
from portal.packages.states import State
from tests.floor import HX, text

SCAN = {**HX, "HX-Trigger": "package-filters"}


def sms(package, status: str) -> OutboxMessage:
    """An SMS in the outbox for a package, in the given status."""
    message = OutboxMessage(kind="sms", package_id=package.id, status=status, payload={"to": "+905551112233"})
    db.session.add(message)
    db.session.commit()
    return message


def aged(package, **delta):
    """Move a package's creation and last change into the past."""
    package.created_at = package.updated_at = utcnow() - timedelta(**delta)
    db.session.commit()
    return package


def test_counts_group_the_active_states_of_the_users_stores_only(make, store):
    other = make.store()
    for state in (State.WAITING, State.WAITING, State.PREPARING, State.READY_FOR_PACKAGING, State.PACKED):
        make.package(store=store, state=state)
    for state in (State.READY_FOR_CUSTOMER_PICKUP, State.READY_FOR_CUSTOMER_PICKUP):
        make.package(store=store, state=state)
    for state in (State.BLOCKED, State.OUT_OF_STOCK, State.NEEDS_RESCHEDULING):
        make.package(store=store, state=state)
    for state in (State.DELIVERED, State.CANCELLED, State.WAITING_REMOTE_ACTION):
        make.package(store=store, state=state)
    make.package(store=other, state=State.WAITING)

    counts = work_queue.queue_counts(db.session, [store.id])

    assert (counts.pack, counts.pickup, counts.problems) == (5, 2, 3)
    assert counts.of("all") is None and counts.of("pickup") == 2
    everywhere = work_queue.queue_counts(db.session, None)
    assert (everywhere.pack, everywhere.pickup, everywhere.problems) == (6, 2, 3)
    # A count stops at its cap, and says so.
    capped = work_queue.queue_counts(db.session, [store.id], cap=4)
    assert (capped.of("pack"), capped.text("pack"), capped.text("pickup")) == (4, "3+", "2")


def test_the_counts_statement_built_once_takes_each_calls_stores_and_time(make, store, monkeypatch):
    other = make.store()
    make.package(store=store, state=State.WAITING)
    held = make.package(store=other, state=State.READY_FOR_CUSTOMER_PICKUP)
    held.hold_until = utcnow() + timedelta(hours=1)
    db.session.commit()
    # The same prebuilt statement answers each list of stores with its own figures, an empty list with none.
    mine, theirs, both = (work_queue.queue_counts(db.session, ids) for ids in ([store.id], [other.id],
                                                                                 [store.id, other.id]))
    assert [(c.pack, c.pickup, c.problems) for c in (mine, theirs, both)] == [(1, 0, 0), (0, 1, 0), (1, 1, 0)]
    nothing = work_queue.queue_counts(db.session, [])
    assert (nothing.pack, nothing.pickup, nothing.problems) == (0, 0, 0)
    # The time is a parameter too: two hours on, the hold has ended and the package is a problem.
    later = utcnow() + timedelta(hours=2)
    monkeypatch.setattr(work_queue, "utcnow", lambda: later)
    assert work_queue.queue_counts(db.session, [other.id]).problems == 1
    assert work_queue.queue_counts(db.session, None).problems == 1


def test_a_ready_package_whose_newest_sms_failed_is_a_problem_until_an_sms_goes_out(make, store):
    ready = make.package(store=store, state=State.READY_FOR_CUSTOMER_PICKUP)
    fine = make.package(store=store, state=State.READY_FOR_CUSTOMER_PICKUP)
    sms(fine, OutboxMessage.SENT)
    sms(ready, OutboxMessage.SENT)
    failed = sms(ready, OutboxMessage.DEAD)

    assert work_queue.queue_counts(db.session, [store.id]).problems == 1
    problems = work_queue.queue_page(db.session, "problems", [store.id])
    assert [(c.package.id, c.sms_not_sent) for c in problems.cards] == [(ready.id, True)]

    sms(ready, OutboxMessage.SENT)  # the resend went out
    assert work_queue.queue_counts(db.session, [store.id]).problems == 0
    assert work_queue.queue_page(db.session, "problems", [store.id]).cards == []
    assert failed.status == OutboxMessage.DEAD


def test_a_tab_lists_the_oldest_first_with_its_due_time_and_pages_on(make, store):
    newer = make.package(store=store)
    older = aged(make.package(store=store), hours=5)
    packed = make.package(store=store, state=State.PACKED)
    allowance = work_queue.Allowance(pack=timedelta(hours=4), pickup=timedelta(days=2))

    first = work_queue.queue_page(db.session, "pack", [store.id], limit=2, allowance=allowance)

    assert [c.package.id for c in first.cards] == [newer.id, older.id]  # by id: the order they came in
    by_id = {c.package.id: c for c in first.cards}
    assert by_id[older.id].due_kind == "pack" and by_id[older.id].overdue
    assert by_id[older.id].due_at == older.created_at + timedelta(hours=4)
    assert not by_id[newer.id].overdue
    second = work_queue.queue_page(db.session, "pack", [store.id], after=first.next_after, limit=2)
    assert [c.package.id for c in second.cards] == [packed.id]
    assert second.cards[0].due_at is None and second.next_after is None

    ready = aged(make.package(store=store, state=State.READY_FOR_CUSTOMER_PICKUP), days=3)
    card = work_queue.queue_page(db.session, "pickup", [store.id], allowance=allowance).cards[0]
    assert (card.package.id, card.due_kind, card.overdue) == (ready.id, "pickup", True)


def test_a_scan_resolves_a_package_an_order_or_an_item_of_one_open_package(make, store):
    package = make.package(store=store)
    packed = make.package(store=store, state=State.PACKED)
    theirs = make.package(store=make.store())
    scope = [store.id]

    assert work_queue.resolve_scan(db.session, package.number.lower(), scope).package.id == package.id
    assert work_queue.resolve_scan(db.session, f" {package.order_number} ", scope).package.id == package.id
    item = work_queue.resolve_scan(db.session, package.items[1].barcode, scope)
    assert (item.kind, item.package.id, item.barcode) == ("item", package.id, package.items[1].barcode)
    # A packed package's item is not "to pack"; another store's package is not found at all.
    assert work_queue.resolve_scan(db.session, packed.items[0].barcode, scope).kind == "none"
    assert work_queue.resolve_scan(db.session, theirs.number, scope).kind == "none"
    assert work_queue.resolve_scan(db.session, theirs.items[0].barcode, scope).kind == "none"
    assert work_queue.resolve_scan(db.session, "NONSENSE-42", scope).kind == "none"
    assert work_queue.resolve_scan(db.session, "   ", scope).kind == "none"


def test_an_item_in_two_open_packages_or_an_order_of_two_packages_is_ambiguous(make, store):
    first, second = make.package(store=store), make.package(store=store)
    second.items[0].barcode = first.items[0].barcode
    second.order_number = first.order_number
    db.session.commit()

    by_item = work_queue.resolve_scan(db.session, first.items[0].barcode, [store.id])
    assert (by_item.kind, by_item.barcode) == ("several", first.items[0].barcode)
    assert work_queue.resolve_scan(db.session, first.order_number, [store.id]).kind == "several"


def test_the_home_is_the_to_pack_tab_with_a_count_on_every_queue_tab(client, make, store, zeynep):
    waiting = make.package(store=store)
    ready = make.package(store=store, state=State.READY_FOR_CUSTOMER_PICKUP)
    make.package(store=store, state=State.BLOCKED)
    make.package(store=store, state=State.DELIVERED)

    home = text(client.get("/packages"))

    assert re.search(r'id="tab-pack"[^>]*aria-current="page"', home)
    assert re.search(r'id="count-pack">1<', home) and re.search(r'id="count-pickup">1<', home)
    assert re.search(r'id="count-problems">1<', home) and 'id="count-all"' not in home
    assert f'id="package-row-{waiting.id}"' in home and f'id="package-row-{ready.id}"' not in home
    assert "Pack by" in home

    pickup = text(client.get("/packages?tab=pickup", headers=HX))
    assert "<html" not in pickup and re.search(r'id="tab-pickup"[^>]*aria-current="page"', pickup)
    assert f'href="/packages/{ready.id}?handover=1"' in pickup and "Pick up by" in pickup
    # The list refreshes itself on the same tab.
    assert re.search(r'<section id="package-table"[^>]*hx-get="/packages\?tab=pickup"', pickup)
    every = text(client.get("/packages?tab=all", headers=HX))
    assert every.count('<tr id="package-row-') == 4


def test_a_scanned_package_or_order_number_opens_the_package_ready_ones_on_the_handover(client, make, store,
                                                                                           zeynep):
    waiting = make.package(store=store)
    ready = make.package(store=store, state=State.READY_FOR_CUSTOMER_PICKUP)

    by_number = client.get(f"/packages?search={waiting.number}", headers=SCAN)
    by_order = client.get(f"/packages?search={ready.order_number}", headers=SCAN)

    assert by_number.headers["HX-Redirect"] == f"/packages/{waiting.id}"
    assert by_order.headers["HX-Redirect"] == f"/packages/{ready.id}?handover=1"
    plain = client.get(f"/packages?search={ready.number}&open=1")
    assert plain.status_code == 302 and plain.headers["Location"].endswith(f"/packages/{ready.id}?handover=1")


def test_a_scanned_item_barcode_opens_the_packing_screen_with_the_item(client, make, store, zeynep):
    package = make.package(store=store)
    barcode = package.items[1].barcode

    response = client.get(f"/packages?search={barcode}", headers=SCAN)

    assert response.headers["HX-Redirect"] == f"/packages/{package.id}/pack?scan={barcode}"


def test_a_scan_that_matches_nothing_says_so_in_the_field_with_the_scanned_text(client, make, store, zeynep):
    waiting = make.package(store=store)

    response = client.get("/packages?search=XYZ-123", headers=SCAN)

    body = text(response)
    assert response.status_code == 200 and "HX-Redirect" not in response.headers
    field = re.search(r'<div class="filter-search" id="scan-field" hx-swap-oob="true">(.*?)</div>', body, re.S)
    assert field is not None
    assert re.search(r'<input id="search"[^>]*value="XYZ-123"[^>]*aria-invalid="true"', field.group(1))
    assert "Nothing matches “XYZ-123”" in field.group(1)
    # The queue behind it stays as it was: the To pack tab, not an empty search result.
    assert f'id="package-row-{waiting.id}"' in body
    # A refresh of the list is no scan: it leaves the field alone.
    refresh = text(client.get("/packages?search=XYZ-123", headers={**HX, "HX-Trigger": "package-table"}))
    assert 'id="scan-field"' not in refresh
