"""The package row lock every change of a package starts with (the command door, the shelf, the hold)."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.db_types import rowcount
from portal.errors import NotFound
from portal.packages.models import Package


def lock_package(session: Session, package_id: int, store_ids: list[int] | None) -> Package:
    """Take the package's row lock (a no-op UPDATE works on PostgreSQL and SQLite alike) and reload it.

    store_ids limits it to those stores (None: any store); another store's package is NotFound.
    """
    stmt = update(Package).where(Package.id == package_id).values(version=Package.version)
    if store_ids is not None:
        stmt = stmt.where(Package.stock_location_id.in_(store_ids))
    if rowcount(session.execute(stmt.execution_options(synchronize_session=False))) != 1:
        raise NotFound(_("Package not found."))
    return session.scalars(
        select(Package).where(Package.id == package_id).execution_options(populate_existing=True)
    ).one()
