"""The customer's page behind the link in the ready-for-pickup SMS: no login; the signed token is the key.

It shows only the pickup code (as a QR code and as digits), the store, its address and opening hours, and the
pick-up-by date. A forged, tampered, expired, replaced or used link gets one plain page (410) that says nothing
of why, nor of the order.

The customer's page (not a delegate's) also names who collects instead of them, or takes that back: two small
forms posted with Flask-WTF's CSRF token, the signed link being the authority (portal.packages.delegate with
source "customer"), rate-limited per address on top of the domain's limit on namings per package.
"""
from __future__ import annotations

from flask import Blueprint, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _

from portal.errors import DomainError, ValidationFailed
from portal.extensions import db, limiter
from portal.packages import customer_link, delegate
from portal.packages.delegate_models import PackageDelegate

bp = Blueprint("customer", __name__)


def _private(response, status: int):
    """The page with headers that keep it out of caches and search engines.

    Talisman sets one Referrer-Policy for the whole app; the pages' <meta name="referrer"> asks for none here."""
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    return response


# What ?done= may say after a form (Post/Redirect/Get); anything else shows nothing.
def _done_messages() -> dict[str, str]:
    """The confirmations the page shows after naming or removing a delegate."""
    return {
        "named": _("Done. They were sent an SMS with a code of their own. Your code still works."),
        "removed": _("Done. They can no longer collect your order; their code no longer works."),
    }


def _invalid():
    """The one plain page for a link that opens nothing."""
    db.session.rollback()
    return _private(make_response(render_template("customer/invalid.html")), 410)


def _render(view: customer_link.CustomerView, status: int = 200, **ctx):
    """The customer page (the delegate's masked name and phone when one is named)."""
    collector = None
    if view.delegate is not None:
        collector = {"name": delegate.mask_name(view.delegate.name), "phone": delegate.mask_phone(view.delegate.phone)}
    done = _done_messages().get(request.args.get("done", ""), "")
    return _private(make_response(render_template("customer/page.html", view=view, collector=collector, done=done,
                                                  **ctx)), status)


@bp.get(customer_link.PATH + "<token>")
@limiter.limit("60 per minute")
def page(token: str):
    """The customer page of a link, or the "not valid any more" page."""
    try:
        view = customer_link.customer_view(db.session, token)
    except customer_link.LinkInvalid:
        return _invalid()
    return _render(view)


def _customer_view(token: str) -> customer_link.CustomerView | None:
    """The customer's own page of a token (None for an invalid link or a delegate's: they name no one)."""
    try:
        view = customer_link.customer_view(db.session, token)
    except customer_link.LinkInvalid:
        return None
    return None if view.for_delegate else view


@bp.post(customer_link.PATH + "<token>/delegate")
@limiter.limit("10 per minute")
def name_delegate(token: str):
    """Name (or replace) who collects instead of the customer; the page again with the message or the errors."""
    view = _customer_view(token)
    if view is None:
        return _invalid()
    form = {"name": request.form.get("name", ""), "phone": request.form.get("phone", ""),
            "confirm": request.form.get("confirm") == "yes"}
    errors: dict[str, str] = {}
    if not form["confirm"]:
        errors["confirm"] = _("Tick the box to confirm this person may collect your order.")
    try:
        delegate.clean_name(form["name"])
    except ValidationFailed as exc:
        errors["name"] = str(exc)
    try:
        delegate.clean_phone(form["phone"])
    except ValidationFailed as exc:
        errors["phone"] = str(exc)
    if not errors:
        try:
            delegate.name_delegate(db.session, view.package_id, name=form["name"], phone=form["phone"],
                                   store_ids=None, source=PackageDelegate.CUSTOMER)
        except ValidationFailed as exc:
            errors[exc.field if exc.field in ("name", "phone") else "form"] = str(exc)
        except DomainError as exc:
            errors["form"] = str(exc)
    if errors:
        return _render(_customer_view(token) or view, 422, form=form, errors=errors)
    return redirect(url_for("customer.page", token=token, done="named", _anchor="collector"), code=303)


@bp.post(customer_link.PATH + "<token>/delegate/remove")
@limiter.limit("10 per minute")
def remove_delegate(token: str):
    """Take back the naming: the delegate's code and link stop working at once."""
    view = _customer_view(token)
    if view is None:
        return _invalid()
    try:
        delegate.remove_delegate(db.session, view.package_id, store_ids=None, source=PackageDelegate.CUSTOMER)
    except DomainError as exc:
        return _render(_customer_view(token) or view, 409, errors={"form": str(exc)})
    return redirect(url_for("customer.page", token=token, done="removed", _anchor="collector"), code=303)
