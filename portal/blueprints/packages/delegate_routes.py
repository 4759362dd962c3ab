"""Delegate collector on the store floor: naming or removing the person who collects instead of the customer.

The form lives in the handover dialog ("Someone else collects"); the package page's delegate box opens the dialog
with it unfolded. Each route calls one domain function of portal.packages.delegate and answers with the dialog
(re-rendered, the panel behind it out of band) or the package panel.
"""
from __future__ import annotations

from flask import abort, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from portal.blueprints.packages import bp
from portal.blueprints.packages.routes import _dialog_response, _panel_response
from portal.errors import DomainError, NotFound, ValidationFailed
from portal.extensions import db
from portal.packages import delegate, queries
from portal.packages.delegate_models import PackageDelegate
from portal.packages.models import Package
from portal.packages.states import State
from portal.web import is_htmx, user_store_ids


@bp.app_template_global("delegate_of")
def delegate_of(package: Package) -> PackageDelegate | None:
    """The delegate named to collect a package ready for pickup, or None."""
    if package.state != State.READY_FOR_CUSTOMER_PICKUP:
        return None
    return delegate.current_delegate(db.session, package.id)


@bp.app_template_global("delegates_of_cards")
def delegates_of_cards(cards: list) -> dict[int, PackageDelegate]:
    """The delegates of the ready packages among a queue page's cards, by package id (one query)."""
    ids = [card.package.id for card in cards if card.package.state == State.READY_FOR_CUSTOMER_PICKUP]
    return delegate.current_delegates(db.session, ids)


@bp.app_template_filter("masked_phone")
def masked_phone(phone: str) -> str:
    """A phone number with all but its ends hidden."""
    return delegate.mask_phone(phone)


def _answer(package_id: int, store_ids: list[int] | None, message: str, level: str, status: int = 200, **extra):
    """The answer to a delegate form: the dialog it came from, or the package panel; a page load without htmx."""
    if not is_htmx():
        flash(message, level)
        return redirect(url_for("packages.show", package_id=package_id, handover=1 if extra else None))
    package = queries.get_package(db.session, package_id, store_ids)
    if request.form.get("in_dialog"):
        return _dialog_response(package, status=status, toast=(message, level), **extra)
    return _panel_response(package, status=status, error=message if level == "error" else None,
                           toast=(message, level))


@bp.post("/packages/<int:package_id>/delegate")
@login_required
def name_delegate(package_id: int):
    """Name (or replace) the person who collects the package, on the customer's call; they are texted a code."""
    store_ids = user_store_ids()
    form = request.form
    try:
        if not form.get("confirm"):
            raise ValidationFailed(_("Confirm that the customer asked for this person to collect."), field="confirm")
        change = delegate.name_delegate(db.session, package_id, name=form.get("name"), phone=form.get("phone"),
                                        user_id=current_user.id, store_ids=store_ids)
    except NotFound:
        abort(404)
    except DomainError as exc:
        status = exc.http_status if exc.http_status in (409, 429) else 422
        return _answer(package_id, store_ids, exc.message, "error", status, delegate_error=exc.message,
                       delegate_field=exc.field, delegate_values=form)
    return _answer(package_id, store_ids, change.message, "success")


@bp.post("/packages/<int:package_id>/delegate/remove")
@login_required
def remove_delegate(package_id: int):
    """Take back the delegate's naming: their code stops working."""
    store_ids = user_store_ids()
    try:
        change = delegate.remove_delegate(db.session, package_id, user_id=current_user.id, store_ids=store_ids)
    except NotFound:
        abort(404)
    except DomainError as exc:
        return _answer(package_id, store_ids, exc.message, "error", exc.http_status if exc.http_status == 409 else 422)
    return _answer(package_id, store_ids, change.message, "success" if change.previous else "error")
