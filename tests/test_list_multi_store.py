"""A staff member of several stores pages through the list newest first, across their stores only."""
from __future__ import annotations

from portal.extensions import db
from portal.packages import queries
from portal.packages.states import State


def test_a_floater_pages_newest_first_through_both_stores_and_never_sees_a_third(make):
    kadikoy, besiktas, ankara = make.store(), make.store(), make.store()
    mine = [make.package(store=[kadikoy, besiktas, ankara][i % 3]) for i in range(9)]
    expected = [p.id for p in reversed(mine) if p.stock_location_id != ankara.id]
    stores = [kadikoy.id, besiktas.id]

    first = queries.list_packages(db.session, queries.PackageFilters(), stores, limit=4)
    second = queries.list_packages(db.session, queries.PackageFilters(after=first.next_after), stores, limit=4)
    back = queries.list_packages(db.session, queries.PackageFilters(before=second.prev_before), stores, limit=4)

    assert [p.id for p in first.packages] == expected[:4]
    assert [p.id for p in second.packages] == expected[4:]
    assert second.next_after is None
    assert [p.id for p in back.packages] == expected[:4]


def test_the_floaters_filters_apply_in_every_store(make):
    kadikoy, besiktas = make.store(), make.store()
    waiting = [make.package(store=kadikoy), make.package(store=besiktas)]
    make.package(store=besiktas, state=State.PACKED)

    page = queries.list_packages(db.session, queries.PackageFilters(status=State.WAITING),
                                 [kadikoy.id, besiktas.id])

    assert [p.id for p in page.packages] == [waiting[1].id, waiting[0].id]
