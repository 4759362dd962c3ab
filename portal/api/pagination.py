"""Keyset pagination for API lists, in the style of GET /api/v1/oms/packages/: `next` and `previous` links.

A page is read with `after` (rows past this id in the list's order) or `before` (rows ahead of it);
every page costs one index range scan, however deep the client has paged.
"""
from __future__ import annotations

from typing import Any

from flask import current_app, url_for
from pydantic import Field
from sqlalchemy import Select
from sqlalchemy.orm import Session

from portal.api.schemas import Query, QueryInt, QueryLimit

MAX_LIMIT = 100


class PageQuery(Query):
    """The cursor and size asked for in the query string."""

    after: QueryInt | None = Field(None, description="Cursor (from `next`).")
    before: QueryInt | None = Field(None, description="Cursor (from `previous`).")
    limit: QueryLimit | None = Field(None, description=f"Page size (default 25; larger values are capped at "
                                                       f"{MAX_LIMIT}).")

    @property
    def size(self) -> int:
        """The page size: the limit asked for (capped), else the configured page size."""
        return min(self.limit or current_app.config["PAGE_SIZE"], MAX_LIMIT)


def keyset_page(session: Session, stmt: Select, id_column, args: PageQuery, *, newest_first: bool,
                endpoint: str, **url_values) -> tuple[list, str | None, str | None]:
    """One page of stmt's rows ordered by id_column, with the URLs of the next and previous pages.

    newest_first orders by descending id (`after` then means older rows). The URLs keep limit when
    the client gave one, and url_values (the route's own arguments).
    """
    backwards = args.before is not None and args.after is None
    forward_order = id_column.desc() if newest_first else id_column.asc()
    reverse_order = id_column.asc() if newest_first else id_column.desc()
    if backwards:
        stmt = stmt.where(id_column > args.before if newest_first else id_column < args.before)
        stmt = stmt.order_by(reverse_order)
    else:
        if args.after is not None:
            stmt = stmt.where(id_column < args.after if newest_first else id_column > args.after)
        stmt = stmt.order_by(forward_order)
    rows = list(session.scalars(stmt.limit(args.size + 1)))
    has_more = len(rows) > args.size
    rows = rows[:args.size]
    if backwards:
        rows.reverse()
        next_after = rows[-1].id if rows else None
        prev_before = rows[0].id if rows and has_more else None
    else:
        next_after = rows[-1].id if rows and has_more else None
        prev_before = rows[0].id if rows and args.after is not None else None
    extra: dict[str, Any] = {"limit": args.size} if args.limit is not None else {}

    def link(**cursor) -> str:
        """The URL of a neighbouring page."""
        return url_for(endpoint, _external=True, **url_values, **cursor, **extra)

    return (rows, link(after=next_after) if next_after is not None else None,
            link(before=prev_before) if prev_before is not None else None)
