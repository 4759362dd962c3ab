"""Shared database helpers: rowcount() of an UPDATE or DELETE, on each configured database."""
from __future__ import annotations

from sqlalchemy import delete, update

from portal.db_types import rowcount
from portal.extensions import db
from portal.stores.models import StockLocation


def test_rowcount_counts_the_rows_an_update_matched(make):
    first, second, _ = make.store("S1"), make.store("S2"), make.store("S3")
    db.session.commit()

    matched = db.session.execute(
        update(StockLocation).where(StockLocation.id.in_([first.id, second.id])).values(name="renamed"))

    assert rowcount(matched) == 2


def test_rowcount_is_zero_when_a_delete_matched_nothing(make):
    make.store("S1")
    db.session.commit()

    assert rowcount(db.session.execute(delete(StockLocation).where(StockLocation.id == -1))) == 0
