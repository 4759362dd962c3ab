"""Keyset pagination for API lists, in the style of GET /api/v1/oms/packages/: `next` and `previous` links.

A page is read with `after` (rows past this id in the list's order) or `before` (rows ahead of it);
every page costs one index range scan, however deep the client has paged.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request, url_for
from sqlalchemy import Select
from sqlalchemy.orm import Session

from portal.errors import ValidationFailed
from portal.web import check_int_args, plain_int

MAX_LIMIT = 100


@dataclass
class PageArgs:
    """The cursor and size asked for in the query string."""

    after: int | None
    before: int | None
    limit: int
    limit_given: bool


def page_args() -> PageArgs:
    """Read after, before and limit from the query string; raises ValidationFailed naming a bad one."""
    check_int_args(request.args, ("after", "before"))
    limit_arg = (request.args.get("limit") or "").strip()
    if limit_arg and not plain_int(limit_arg):
        raise ValidationFailed("limit must be a positive number.", field="limit")
    limit = min(int(limit_arg), MAX_LIMIT) if limit_arg else min(current_app.config["PAGE_SIZE"], MAX_LIMIT)
    after, before = plain_int(request.args.get("after") or ""), plain_int(request.args.get("before") or "")
    return PageArgs(after, before, limit, bool(limit_arg))


def keyset_page(session: Session, stmt: Select, id_column, args: PageArgs, *, newest_first: bool,
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
    rows = list(session.scalars(stmt.limit(args.limit + 1)))
    has_more = len(rows) > args.limit
    rows = rows[:args.limit]
    if backwards:
        rows.reverse()
        next_after = rows[-1].id if rows else None
        prev_before = rows[0].id if rows and has_more else None
    else:
        next_after = rows[-1].id if rows and has_more else None
        prev_before = rows[0].id if rows and args.after is not None else None
    extra = {"limit": args.limit} if args.limit_given else {}

    def link(**cursor) -> str:
        """The URL of a neighbouring page."""
        return url_for(endpoint, _external=True, **url_values, **cursor, **extra)

    return (rows, link(after=next_after) if next_after is not None else None,
            link(before=prev_before) if prev_before is not None else None)
