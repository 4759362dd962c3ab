"""Partial pickup: hand a package over while the customer refuses some items (any token; staff see their stores).

The customer's code is required exactly as for POST .../command/ with self-service-package-delivery (when
IS_OTP_ENABLED is true). The refused units go to a refund package in Packed for Refund; every unit refused
is a full refusal of the package, which the caller confirms with confirm_full.
"""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from portal.api.auth import caller
from portal.api.operations import Access, operation
from portal.api.resources.dry_run import CommandPreview
from portal.api.schemas import Answer, Body, RowId, Status
from portal.extensions import db
from portal.packages import dry_run, handover_lines, partial, queries

Reason = Literal["damaged", "wrong_item", "changed_mind", "not_found"]


class RefusedLine(Body):
    """Units of one order item the customer does not take, and why."""

    order_item: RowId
    quantity: int | None = Field(None, ge=1, le=100000, description="Units refused; default the whole line.")
    reason: Reason = Field(description="damaged, wrong_item, changed_mind, or not_found (staff could not find "
                                       "the item).")


class PartialPickupRequest(Body):
    """The customer's code and the lines they refuse."""

    otp: str | None = Field(None, max_length=20, description="The customer's pickup code.")
    refused: list[RefusedLine] = Field(max_length=500, description="The refused lines; each order item once. "
                                                                   "Empty: a plain delivery.")
    confirm_full: bool = Field(False, description="Required when every unit is refused: the package is not "
                                                  "delivered but goes to Packed for Refund.")
    version: int | None = Field(None, ge=1, le=2**31 - 1, description="The package's version as last read; a "
                                                                      "different one answers 409.")


class HandoverLineAnswer(Answer):
    """A line as the handover recorded it."""

    order_item: int
    sku: str
    name: str
    quantity: int
    delivered: int
    refused: int
    reason: Reason | None


class PackageRef(Answer):
    """A package, by id, number and status."""

    id: int
    number: str
    status: Status


class PartialPickupResult(Answer):
    """What the handover did."""

    package: PackageRef
    delivered: bool = Field(description="False: every item was refused and the package went to Packed for Refund.")
    refund_package: PackageRef | None = Field(description="Where the refused items went: a package split off "
                                                          "(Packed for Refund), or the package itself.")
    lines: list[HandoverLineAnswer]
    message: str


def _ref(package) -> PackageRef:
    """A package row as a reference."""
    return PackageRef(id=package.id, number=package.number, status=Status.of_state(package.state))


@operation("POST", "/oms/packages/<int:package_id>/partial-pickup/", body=PartialPickupRequest,
           answer=PartialPickupResult, access=Access.ANY, errors=("404", "409", "422"), tag="packages",
           summary="Hand a package over while the customer refuses some items (partial pickup).",
           description="Checks the pickup code as self-service-package-delivery does, records every line "
                       "(units delivered and refused, with the reason), delivers the package with the items "
                       "taken and moves the refused units to a new refund package in Packed for Refund "
                       "(package.status.delivered carries handover.lines; package.status.packed_for_refund "
                       "carries refund.lines). Every unit refused: nothing is delivered and, with confirm_full, "
                       "the package itself goes to Packed for Refund. A wrong code changes nothing.",
           example={"otp": "123456", "refused": [{"order_item": 1201, "quantity": 1, "reason": "damaged"}]})
def partial_pickup(package_id: int, body: PartialPickupRequest):
    """Deliver a package except its refused lines."""
    current = caller()
    refused = [line.model_dump(exclude_none=True) for line in body.refused]
    result = partial.hand_over(db.session, package_id, code=body.otp, refused=refused, user_id=current.user_id,
                               store_ids=current.store_ids, expected_version=body.version,
                               confirm_full=body.confirm_full)
    return PartialPickupResult(
        package=_ref(result.package), delivered=result.delivered,
        refund_package=_ref(result.refund_package) if result.refund_package is not None else None,
        lines=[HandoverLineAnswer(**line.as_json()) for line in result.lines], message=result.message)


@operation("POST", "/oms/packages/<int:package_id>/partial-pickup/preview/", body=PartialPickupRequest,
           answer=list[CommandPreview], access=Access.ANY, errors=("404", "409", "422"), tag="packages",
           summary="Dry-run a partial pickup: what each command would do, nothing written.",
           description="Takes the body of POST .../partial-pickup/ and answers one preview per command the "
                       "handover would run: the delivery of the package and Package Packed for Refund of the "
                       "package split off (or the one command of a plain delivery or a full refusal). The code "
                       "is only checked for its shape: a dry run spends no try.",
           example={"otp": "123456", "refused": [{"order_item": 1201, "reason": "not_found"}]})
def preview_partial_pickup(package_id: int, body: PartialPickupRequest):
    """Dry-run a partial pickup."""
    current = caller()
    refused = [line.model_dump(exclude_none=True) for line in body.refused]
    return [CommandPreview.of(p) for p in dry_run.preview_partial_pickup(
        db.session, package_id, code=body.otp, refused=refused, user_id=current.user_id,
        store_ids=current.store_ids)]


@operation("GET", "/oms/packages/<int:package_id>/handover-lines/", answer=list[HandoverLineAnswer],
           access=Access.ANY, errors=("404",), tag="packages",
           summary="The lines of a package's handover with refusals (empty for a plain delivery).")
def list_handover_lines(package_id: int):
    """The recorded handover lines of a package in the caller's stores."""
    package = queries.get_package(db.session, package_id, caller().store_ids)
    return [HandoverLineAnswer(**line.as_json()) for line in handover_lines.lines_of(db.session, package.id)]
