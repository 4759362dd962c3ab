"""Delegate collector: who collects a package ready for pickup, and naming, replacing or removing the delegate who
collects it instead of the customer with a code of their own (any token; staff in their stores only)."""
from __future__ import annotations

from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.schemas import Answer, Body, Timestamp
from portal.extensions import db
from portal.packages import delegate, queries
from portal.packages.delegate_models import PackageDelegate


class Delegate(Answer):
    """The person named to collect the package; the phone is masked."""

    id: int
    name: str
    phone: str = Field(description="Masked: the first three and the last two characters.")
    source: str = Field(description="Who named them: staff (on the customer's call) or customer (customer page).")
    named_at: Timestamp

    @classmethod
    def of(cls, row: PackageDelegate) -> Delegate:
        """The answer for a delegate."""
        return cls(id=row.id, name=row.name, phone=delegate.mask_phone(row.phone), source=row.source,
                   named_at=row.created_at)


class WhoCollects(Answer):
    """Who may collect a package: its customer, and the delegate when one is named."""

    package: int
    customer_name: str
    customer_phone: str = Field(description="Masked.")
    delegate: Delegate | None = Field(description="The delegate whose own code the handover also accepts; null "
                                                  "when none is named (or the package is not ready for pickup).")


class NewDelegate(Body):
    """The person who collects instead of the customer."""

    name: str = Field(min_length=1, max_length=delegate.NAME_MAX_LENGTH)
    phone: str = Field(min_length=1, max_length=32, description="A mobile number; spaces, dashes and brackets are "
                                                                "dropped, a leading 00 reads as +.")


def _who(package_id: int) -> WhoCollects:
    """The answer for a package the caller may see."""
    package = queries.get_package(db.session, package_id, caller().store_ids)
    found = delegate.who_collects(db.session, package)
    return WhoCollects(package=package.id, customer_name=found.customer_name, customer_phone=found.customer_phone,
                       delegate=Delegate.of(found.delegate) if found.delegate is not None else None)


@operation("GET", "/oms/packages/<int:package_id>/delegate/", summary="Who collects a package: the customer, and "
           "the delegate when one is named.", access=Access.ANY, answer=WhoCollects, errors=("404",), tag="packages")
def get_delegate(package_id: int):
    """The package's customer and its delegate, phones masked."""
    return _who(package_id)


@operation("PUT", "/oms/packages/<int:package_id>/delegate/",
           summary="Name (or replace) the delegate who collects a ready package; they get a code of their own.",
           access=Access.ANY, body=NewDelegate, answer=WhoCollects, errors=("404", "409"), tag="packages",
           is_idempotent=True, example={"name": "Deniz Yılmaz", "phone": "+90 532 123 45 67"},
           description="The package must be Ready for Customer Pickup. The delegate is texted a pickup code of "
                       "their own; the customer's code keeps working and the customer is told by SMS. A delegate "
                       "named before is replaced and their code stops working. The handover accepts either code; "
                       "the delivery's audit row and events say who collected. Audited; raises "
                       "package.delegate_changed. Naming is limited like resending a code (429).")
def put_delegate(package_id: int, body: NewDelegate):
    """Name the package's delegate as staff on the customer's call."""
    current = caller()
    delegate.name_delegate(db.session, package_id, name=body.name, phone=body.phone, user_id=current.user_id,
                           store_ids=current.store_ids, source=PackageDelegate.STAFF)
    return _who(package_id)


@operation("DELETE", "/oms/packages/<int:package_id>/delegate/", summary="Remove a package's delegate: their code "
           "stops working.", access=Access.ANY, status=204, errors=("404",), tag="packages")
def delete_delegate(package_id: int):
    """Take back the delegate's naming (audited); 204 even when the package had none."""
    current = caller()
    delegate.remove_delegate(db.session, package_id, user_id=current.user_id, store_ids=current.store_ids)
