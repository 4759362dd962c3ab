"""The package row lock every change of a package starts with (the command door, the shelf, the hold)."""
from __future__ import annotations

from functools import cache

from flask_babel import gettext as _
from sqlalchemy import Select, Update, bindparam, select, update
from sqlalchemy.orm import Session

from portal.db_types import rowcount
from portal.errors import NotFound
from portal.packages.models import Package


@cache
def _statements(postgresql: bool, by_store: bool) -> tuple[Select, Update | None]:
    """The lock's statements, built once per kind (a statement built per call costs its construction and its cache
    key on every command): the locking read on PostgreSQL; the no-op UPDATE and the read on SQLite."""
    where = [Package.id == bindparam("package_id")]
    if by_store:
        where.append(Package.stock_location_id.in_(bindparam("store_ids", expanding=True)))
    query = select(Package).where(*where).execution_options(populate_existing=True)
    if postgresql:
        return query.with_for_update(of=Package, key_share=True), None
    return query, (update(Package).where(*where).values(version=Package.version)
                   .execution_options(synchronize_session=False))


def lock_package(session: Session, package_id: int, store_ids: list[int] | None) -> Package:
    """Take the package's row lock and load it as it is now (with its store and customer, as always).

    PostgreSQL: one round trip, SELECT ... FOR NO KEY UPDATE OF packages (the lock an UPDATE of the row takes,
    so inserts of rows pointing at the package are not blocked). SQLite, which has no row locks: a no-op UPDATE
    takes the database's write lock first, then the row is read. store_ids limits it to those stores (None: any
    store); another store's package is NotFound.
    """
    params: dict[str, object] = {"package_id": package_id}
    if store_ids is not None:
        if not store_ids:
            raise NotFound(_("Package not found."))
        params["store_ids"] = list(store_ids)
    query, write_lock = _statements(session.get_bind().dialect.name == "postgresql", store_ids is not None)
    package = None
    if write_lock is None or rowcount(session.execute(write_lock, params)) == 1:
        package = session.scalars(query, params).unique().one_or_none()
    if package is None:
        raise NotFound(_("Package not found."))
    return package
