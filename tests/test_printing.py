"""The printed paper of the store floor: the pick list of the packages to pack and the packing slip."""
from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.packages import barcodes, queries
from portal.packages.models import PackageItem
from portal.packages.states import STATES, TO_PACK, TONES, State
from tests.floor import text


@pytest.fixture
def other_store(make):
    """A store Zeynep does not work in."""
    return make.store("IST-BSK", "Beşiktaş Store")


def shared_item(package, quantity: int, barcode: str = "8690000000012", name: str = "Linen shirt") -> None:
    """Put the same item (same barcode) into a package, `quantity` pieces."""
    package.items.append(PackageItem(order_item=package.id * 1000 + 99, sku="SKU-LINEN", name=name,
                                     barcode=barcode, quantity=quantity))
    db.session.commit()


def pick_rows(page: str) -> dict[str, str]:
    """The pick table's rows by barcode: the row's text with its whitespace squeezed."""
    table = re.search(r'<table[^>]*id="pick-list".*?</table>', page, re.S).group(0)
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        barcode = re.search(r'class="barcode">([^<]+)<', row)
        if barcode:
            rows[barcode.group(1)] = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
    return rows


def test_every_state_has_one_tone_and_every_tone_is_used():
    assert {info.tone for info in STATES.values()} == set(TONES)
    assert STATES[State.DELIVERED].tone == "done"
    assert STATES[State.WAITING].tone == "todo"
    assert STATES[State.READY_FOR_CUSTOMER_PICKUP].tone == "waiting"
    assert STATES[State.BLOCKED].tone == "problem"
    # "To pack" is work to do, never waiting or a problem.
    assert {STATES[s].tone for s in TO_PACK} == {"todo"}


def test_pick_list_groups_items_sums_quantities_and_names_the_packages(client, make, store, zeynep):
    first = make.package(store=store, state=State.WAITING, items=1)
    second = make.package(store=store, state=State.READY_FOR_PACKAGING, items=0)
    shared_item(first, 1)
    shared_item(second, 2)
    packed = make.package(store=store, state=State.PACKED, items=1)  # already packed: not on the list

    page = text(client.get("/packages/pick-list"))

    rows = pick_rows(page)
    assert "Linen shirt" in rows["8690000000012"]
    assert re.search(r" 3 .*PK\d+ .*PK\d+ ×2", rows["8690000000012"]), rows["8690000000012"]
    assert first.number in rows["8690000000012"] and second.number in rows["8690000000012"]
    assert first.items[0].barcode in rows  # the first package's own item has a row of its own
    assert packed.items[0].barcode not in page and packed.number not in page
    assert "2 packages, 4 pieces" in page
    assert f'/packages/{first.id}/packing-slip' in page
    assert "pick-list-capped" not in page


def test_pick_list_shows_only_the_users_stores(client, make, store, other_store, zeynep):
    mine = make.package(store=store, state=State.PREPARING)
    theirs = make.package(store=other_store, state=State.WAITING)

    page = text(client.get("/packages/pick-list"))

    assert mine.number in page
    assert theirs.number not in page
    assert theirs.items[0].barcode not in page


def test_an_admin_pick_list_covers_every_store(client, make, store, other_store, auth_actions):
    make.user("boss", role="admin")
    assert auth_actions.login("boss").status_code == 302
    mine = make.package(store=store, state=State.WAITING)
    theirs = make.package(store=other_store, state=State.WAITING)

    page = text(client.get("/packages/pick-list"))

    assert mine.number in page and theirs.number in page


def test_an_empty_pick_list_says_there_is_nothing_to_pack(client, make, store, zeynep):
    make.package(store=store, state=State.DELIVERED)

    response = client.get("/packages/pick-list")

    assert response.status_code == 200
    assert 'id="pick-list-empty"' in text(response)
    assert 'id="pick-list"' not in text(response)
    assert "data-print" not in text(response)


def test_the_pick_list_is_capped_and_says_so(app, make, store):
    packages = [make.package(store=store, state=State.WAITING, items=1) for _ in range(3)]

    picks = queries.pick_list(db.session, [store.id], limit=2)

    assert picks.truncated is True
    assert [p.id for p in picks.packages] == [p.id for p in packages[:2]]  # the oldest first
    assert len(picks.lines) == 2
    assert queries.pick_list(db.session, [store.id], limit=3).truncated is False


def test_the_capped_list_tells_the_staff(client, make, store, zeynep, monkeypatch):
    for _ in range(2):
        make.package(store=store, state=State.WAITING, items=1)
    original = queries.pick_list
    monkeypatch.setattr(queries, "pick_list", lambda session, store_ids: original(session, store_ids, limit=1))

    page = text(client.get("/packages/pick-list"))

    assert 'id="pick-list-capped"' in page
    assert "oldest 1 packages" in page


def test_packing_slip_lists_order_customer_items_and_store(client, make, store, zeynep):
    package = make.package(store=store, state=State.WAITING, items=2)
    shared_item(package, 3)

    response = client.get(f"/packages/{package.id}/packing-slip")

    page = text(response)
    assert response.status_code == 200
    assert re.search(rf'id="slip-order">\s*{package.order_number}<', page)
    assert re.search(rf'id="slip-package">\s*{package.number}<', page)
    assert re.search(rf'id="slip-customer"[^>]*>\s*{package.customer.full_name}<', page)
    assert "Kadıköy Store" in page
    for item in package.items:
        assert item.barcode in page and item.name in page
    assert re.search(r'8690000000012</code>\s*</span></td>\s*<td class="num col-qty">3<', page)
    assert re.search(r'Pieces in all</th><td class="num col-qty">5<', page)
    assert package.customer.phone not in page  # the slip goes into the box: no phone number on it
    assert "print.css" in page


def test_packing_slip_of_another_store_is_not_found(client, make, other_store, zeynep):
    theirs = make.package(store=other_store)

    assert client.get(f"/packages/{theirs.id}/packing-slip").status_code == 404


def test_print_pages_need_a_login(client, make, store):
    package = make.package(store=store)

    assert client.get("/packages/pick-list").status_code == 302
    assert client.get(f"/packages/{package.id}/packing-slip").status_code == 302


def test_home_and_package_page_link_the_paper(client, make, store, zeynep):
    package = make.package(store=store)

    assert 'href="/packages/pick-list"' in text(client.get("/packages"))
    assert f'href="/packages/{package.id}/packing-slip"' in text(client.get(f"/packages/{package.id}"))


def test_state_chips_carry_their_tone(client, make, store, zeynep):
    delivered = make.package(store=store, state=State.DELIVERED)
    blocked = make.package(store=store, state=State.BLOCKED)

    assert 'class="chip chip-done' in text(client.get(f"/packages/{delivered.id}"))
    assert 'class="chip chip-problem' in text(client.get(f"/packages/{blocked.id}"))


def test_ean13_check_digits_and_modules():
    assert barcodes.is_ean13("4006381333931")  # the textbook example
    assert not barcodes.is_ean13("4006381333932")  # one off in the check digit
    assert not barcodes.is_ean13("400638133393")  # twelve digits
    assert not barcodes.is_ean13("40063813339３1")  # a full-width digit is not a digit a scanner knows
    modules = barcodes.ean13_modules("4006381333931")
    assert len(modules) == 95
    assert modules.startswith("101") and modules.endswith("101") and modules[45:50] == "01010"
    # First digit 4: the left half is L G L L G G; the 2nd digit 0 in L is 0001101, the 3rd 0 in G is 0100111.
    assert modules[3:10] == "0001101" and modules[10:17] == "0100111"
    # The right half in R patterns: the last digit 1 is 1100110.
    assert modules[85:92] == "1100110"


def test_ean13_bars_draw_one_rectangle_per_bar():
    bars = barcodes.ean13_bars("4006381333931")
    modules = barcodes.ean13_modules("4006381333931")
    assert bars.width == 11 + 95 + 7
    assert bars.path.count("M") == len([run for run in modules.split("0") if run])
    assert bars.path.startswith("M11 0h1v40h-1z")  # the start guard's first bar, after the quiet zone
    assert barcodes.ean13_bars("4006381333932") is None


def test_paper_draws_bars_only_for_valid_codes(client, make, store, zeynep):
    package = make.package(store=store, state=State.WAITING, items=0)
    shared_item(package, 1, barcode="8690000000012")
    shared_item(package, 1, barcode="8690000000013", name="Wrong check digit")

    for url in ("/packages/pick-list", f"/packages/{package.id}/packing-slip"):
        page = text(client.get(url))
        assert page.count('class="barcode-bars"') == 1, url
        assert "8690000000013" in page  # still printed as digits
