"""The package row lock every change of a package starts with (the command door, the shelf, the hold)."""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.db_types import rowcount
from portal.errors import NotFound
from portal.packages.models import Package


def lock_package(session: Session, package_id: int, store_ids: list[int] | None) -> Package:
    """Take the package's row lock and load it as it is now (with its store and customer, as always).

    PostgreSQL: one round trip, SELECT ... FOR NO KEY UPDATE OF packages (the lock an UPDATE of the row takes,
    so inserts of rows pointing at the package are not blocked). SQLite, which has no row locks: a no-op UPDATE
    takes the database's write lock first, then the row is read. store_ids limits it to those stores (None: any
    store); another store's package is NotFound.
    """
    where = [Package.id == package_id]
    if store_ids is not None:
        where.append(Package.stock_location_id.in_(store_ids))
    query = select(Package).where(*where).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "postgresql":
        package = session.scalars(query.with_for_update(of=Package, key_share=True)).unique().one_or_none()
    else:
        locked = rowcount(session.execute(update(Package).where(*where).values(version=Package.version)
                                          .execution_options(synchronize_session=False)))
        package = session.scalars(query).unique().one_or_none() if locked == 1 else None
    if package is None:
        raise NotFound(_("Package not found."))
    return package
