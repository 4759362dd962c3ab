"""The customer's page behind the link in the ready-for-pickup SMS: no login; the signed token is the key.

It shows only the pickup code (as a QR code and as digits), the store, its address and opening hours, and the
pick-up-by date. A forged, tampered, expired, replaced or used link gets one plain page (410) that says nothing
of why, nor of the order.
"""
from __future__ import annotations

from flask import Blueprint, make_response, render_template

from portal.extensions import db, limiter
from portal.packages import customer_link

bp = Blueprint("customer", __name__)


def _private(response, status: int):
    """The page with headers that keep it out of caches and search engines.

    Talisman sets one Referrer-Policy for the whole app; the pages' <meta name="referrer"> asks for none here."""
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


@bp.get(customer_link.PATH + "<token>")
@limiter.limit("60 per minute")
def page(token: str):
    """The customer page of a link, or the "not valid any more" page."""
    try:
        view = customer_link.customer_view(db.session, token)
    except customer_link.LinkInvalid:
        db.session.rollback()
        return _private(make_response(render_template("customer/invalid.html")), 410)
    return _private(make_response(render_template("customer/page.html", view=view)), 200)
