"""Partial pickup (issue 9): the customer refuses items at the handover, or staff cannot find one.

Domain (portal.packages.partial through the command engine) and the REST API, on both databases: the
delivered part is delivered, the refused units split into a refund package in Packed for Refund, every line
recorded, events, audit rows and quota; a full refusal needs a confirmation; a wrong code, a line named twice
or a line of another package change nothing.
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select, update

from portal.accounts import auth
from portal.errors import CommandRejected, InvalidOtp, NotFound, ValidationFailed
from portal.extensions import db
from portal.otp.models import PickupCode
from portal.outbox.models import OutboxMessage
from portal.packages import commands, partial, quota
from portal.packages.handover_lines import HandoverLine
from portal.packages.models import Package, PackageItem, PackageLog, Transition
from portal.packages.states import State
from portal.settings.models import ApplicationSetting
from portal.stores.models import StockLocation
from portal.webhooks import catalogue
from tests.floor import HX, text

REFUND_AT_PICKUP = "package-packed-for-refund-at-pickup"


@pytest.fixture
def staff(make, store):
    """Staff of the store."""
    return make.user("zeynep", stores=[store])


def ready(make, store, sms, quantities=(1, 3, 1)) -> tuple[Package, str]:
    """A click & collect package with lines of these quantities, ready for pickup, and the customer's code."""
    package = make.package(store=store, state=State.PACKED, items=len(quantities))
    for item, quantity in zip(package.items, quantities, strict=True):
        item.quantity = quantity
    db.session.commit()
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    return package, re.search(r" is (\d+)\.", sms.outbox[-1].body).group(1)


def wrong(code: str) -> str:
    """A code of the same length that is certainly not this one."""
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def fresh(package_id: int) -> Package:
    """The package as the database has it now."""
    db.session.expire_all()
    return db.session.get(Package, package_id)


def lines_of(package: Package) -> list[tuple[int, int]]:
    """(order_item, quantity) of the package's items, as stored."""
    return [(i.order_item, i.quantity) for i in fresh(package.id).items]


def events(event_type: str) -> list[OutboxMessage]:
    """The recorded events of a type, oldest first."""
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == event_type)
                                   .order_by(OutboxMessage.id)))


def payload_of(message: OutboxMessage) -> dict:
    """An event row's payload (the envelope's payload when the row stores the envelope)."""
    return message.payload.get("payload", message.payload)


def unchanged(package: Package, items_before: list[tuple[int, int]]) -> None:
    """The package is still at the counter with the same items, and no handover line or split package exists."""
    assert fresh(package.id).state == State.READY_FOR_CUSTOMER_PICKUP
    assert lines_of(package) == items_before
    assert db.session.scalar(select(func.count()).select_from(HandoverLine)) == 0
    assert db.session.scalar(select(func.count()).select_from(Package).where(
        Package.number.like(f"{package.number}-R%"))) == 0


def test_partial_pickup_delivers_the_rest_and_splits_the_refused_units_to_packed_for_refund(make, store, staff, sms):
    package, code = ready(make, store, sms)
    first, second, third = package.items
    quota_before = db.session.get(StockLocation, store.id).quota

    result = partial.hand_over(db.session, package.id, code=code, user_id=staff.id, store_ids=[store.id],
                               refused=[{"order_item": second.order_item, "quantity": 1, "reason": "damaged"},
                                        {"order_item": third.order_item, "reason": "not_found"}])

    assert result.delivered and "went to" in result.message
    delivered = fresh(package.id)
    assert delivered.state == State.DELIVERED
    # The package keeps what the customer took: the first line and two of the three units of the second.
    assert lines_of(package) == [(first.order_item, 1), (second.order_item, 2)]
    assert delivered.item_count == 2
    refund = fresh(result.refund_package.id)
    assert refund.number == f"{package.number}-R1"
    assert refund.state == State.PACKED_FOR_REFUND
    assert (refund.order_number, refund.customer_id, refund.stock_location_id) == (
        package.order_number, package.customer_id, store.id)
    assert sorted((i.order_item, i.quantity) for i in refund.items) == [(second.order_item, 1), (third.order_item, 1)]
    assert refund.item_count == 2
    # Every line is recorded once, with what was delivered and refused and why.
    recorded = db.session.scalars(select(HandoverLine).order_by(HandoverLine.id)).all()
    assert [(r.order_item, r.quantity, r.delivered, r.refused, r.reason, r.refund_package_id, r.user_id)
            for r in recorded] == [
        (first.order_item, 1, 1, 0, "", None, staff.id),
        (second.order_item, 3, 2, 1, "damaged", refund.id, staff.id),
        (third.order_item, 1, 0, 1, "not_found", refund.id, staff.id)]
    # The code is used; the quota does not move (neither Delivered nor Packed for Refund counts) and agrees with a
    # recount.
    assert db.session.scalar(select(PickupCode.status).where(PickupCode.package_id == package.id)) == PickupCode.USED
    assert db.session.get(StockLocation, store.id).quota == quota_before
    assert quota.recount(db.session) == 0


def test_partial_pickup_writes_both_audit_rows_and_the_events_with_their_lines(make, store, staff, sms):
    package, code = ready(make, store, sms)
    first, second, third = package.items
    result = partial.hand_over(db.session, package.id, code=code, user_id=staff.id, store_ids=[store.id],
                               refused=[{"order_item": third.order_item, "reason": "changed_mind"}])
    refund = result.refund_package

    delivery_log = db.session.scalars(select(PackageLog).where(PackageLog.package_id == package.id)
                                      .order_by(PackageLog.id.desc())).first()
    assert (delivery_log.from_state, delivery_log.to_state, delivery_log.command, delivery_log.user_id) == (
        State.READY_FOR_CUSTOMER_PICKUP, State.DELIVERED, "self-service-package-delivery", staff.id)
    assert "Pickup code verified." in delivery_log.note
    assert "Refused: Item 3 ×1 (Changed mind)." in delivery_log.note and refund.number in delivery_log.note
    refund_log = db.session.scalar(select(PackageLog).where(PackageLog.package_id == refund.id))
    assert (refund_log.from_state, refund_log.to_state, refund_log.command, refund_log.user_id) == (
        State.READY_FOR_CUSTOMER_PICKUP, State.PACKED_FOR_REFUND, REFUND_AT_PICKUP, staff.id)
    assert package.number in refund_log.note and "Item 3 ×1" in refund_log.note

    [delivered] = events(catalogue.PACKAGE_DELIVERED)
    handover = payload_of(delivered)["handover"]
    assert handover["refund_package"] == {"id": refund.id, "number": refund.number}
    assert [(line["order_item"], line["delivered"], line["refused"], line["reason"]) for line in handover["lines"]] == [
        (first.order_item, 1, 0, None), (second.order_item, 3, 0, None), (third.order_item, 0, 1, "changed_mind")]
    [refunded] = events(catalogue.PACKAGE_PACKED_FOR_REFUND)
    body = payload_of(refunded)
    assert body["id"] == refund.id and body["status"]["code"] == State.PACKED_FOR_REFUND
    assert body["refund"]["split_from"] == {"id": package.id, "number": package.number}
    assert [(line["order_item"], line["refused"]) for line in body["refund"]["lines"]] == [(third.order_item, 1)]
    assert [payload_of(m)["id"] for m in events(catalogue.PACKAGE_CREATED)] == [refund.id]


def test_a_wrong_code_changes_nothing_but_the_counted_try(make, store, staff, sms):
    package, code = ready(make, store, sms)
    before = lines_of(package)

    with pytest.raises(InvalidOtp):
        partial.hand_over(db.session, package.id, code=wrong(code), user_id=staff.id, store_ids=[store.id],
                          refused=[{"order_item": package.items[0].order_item, "reason": "damaged"}])

    unchanged(package, before)
    assert db.session.scalar(select(PickupCode.failed_attempts).where(PickupCode.package_id == package.id)) == 1
    assert events(catalogue.PACKAGE_DELIVERED) == [] and events(catalogue.PACKAGE_PACKED_FOR_REFUND) == []


def test_every_item_refused_is_no_delivery_but_a_confirmed_full_refusal(make, store, staff, sms):
    package, code = ready(make, store, sms, quantities=(1, 2))
    before = lines_of(package)
    everything = [{"order_item": item.order_item, "reason": "wrong_item"} for item in package.items]

    with pytest.raises(partial.FullRefusalUnconfirmed):
        partial.hand_over(db.session, package.id, code=code, refused=everything, user_id=staff.id,
                          store_ids=[store.id])
    unchanged(package, before)
    assert db.session.scalar(select(PickupCode.failed_attempts).where(PickupCode.package_id == package.id)) == 0

    result = partial.hand_over(db.session, package.id, code=code, refused=everything, user_id=staff.id,
                               store_ids=[store.id], confirm_full=True)

    assert not result.delivered and result.refund_package.id == package.id
    assert fresh(package.id).state == State.PACKED_FOR_REFUND
    assert lines_of(package) == before  # nothing was split off: the whole package is refused
    assert [(r.delivered, r.refused, r.reason, r.refund_package_id) for r in result.lines] == [
        (0, 1, "wrong_item", package.id), (0, 2, "wrong_item", package.id)]
    log = db.session.scalars(select(PackageLog).where(PackageLog.package_id == package.id)
                             .order_by(PackageLog.id.desc())).first()
    assert (log.to_state, log.command) == (State.PACKED_FOR_REFUND, REFUND_AT_PICKUP)
    assert "Every item refused" in log.note
    assert events(catalogue.PACKAGE_DELIVERED) == []
    [refunded] = events(catalogue.PACKAGE_PACKED_FOR_REFUND)
    assert payload_of(refunded)["refund"]["split_from"] is None
    assert [line["refused"] for line in payload_of(refunded)["refund"]["lines"]] == [1, 2]


def test_a_full_refusal_with_a_wrong_code_changes_nothing(make, store, staff, sms):
    package, code = ready(make, store, sms, quantities=(1,))
    before = lines_of(package)

    with pytest.raises(InvalidOtp):
        partial.hand_over(db.session, package.id, code=wrong(code), user_id=staff.id, store_ids=[store.id],
                          refused=[{"order_item": package.items[0].order_item, "reason": "damaged"}],
                          confirm_full=True)

    unchanged(package, before)


def test_a_line_named_twice_is_refused_and_a_delivered_package_cannot_be_refused_again(make, store, staff, sms):
    package, code = ready(make, store, sms)
    before = lines_of(package)
    item = package.items[1]

    with pytest.raises(ValidationFailed, match="refused twice") as twice:
        partial.hand_over(db.session, package.id, code=code, user_id=staff.id, store_ids=[store.id],
                          refused=[{"order_item": item.order_item, "quantity": 1, "reason": "damaged"},
                                   {"order_item": item.order_item, "quantity": 1, "reason": "damaged"}])
    assert twice.value.field == "refused"
    unchanged(package, before)

    partial.hand_over(db.session, package.id, code=code, user_id=staff.id, store_ids=[store.id],
                      refused=[{"order_item": item.order_item, "quantity": 1, "reason": "damaged"}])
    recorded = db.session.scalar(select(func.count()).select_from(HandoverLine))
    with pytest.raises(CommandRejected):
        partial.hand_over(db.session, package.id, code=code, user_id=staff.id, store_ids=[store.id],
                          refused=[{"order_item": item.order_item, "quantity": 1, "reason": "damaged"}])
    assert db.session.scalar(select(func.count()).select_from(HandoverLine)) == recorded
    assert db.session.scalar(select(func.count()).select_from(Package).where(
        Package.number.like(f"{package.number}-R%"))) == 1


def test_a_line_of_another_package_or_too_many_units_or_no_reason_changes_nothing(make, store, staff, sms):
    package, code = ready(make, store, sms)
    other = make.package(store=store, state=State.READY_FOR_CUSTOMER_PICKUP)
    before = lines_of(package)
    second = package.items[1]

    for refused, message in [
        ([{"order_item": other.items[0].order_item, "reason": "damaged"}], "is not in this package"),
        ([{"order_item": second.order_item, "quantity": 4, "reason": "damaged"}], "between 1 and 3"),
        ([{"order_item": second.order_item, "quantity": 0, "reason": "damaged"}], "between 1 and 3"),
        ([{"order_item": second.order_item, "reason": "lost"}], "Choose why"),
        ("everything", "must be a list"),
    ]:
        with pytest.raises(ValidationFailed, match=message):
            partial.hand_over(db.session, package.id, code=code, refused=refused, user_id=staff.id,
                              store_ids=[store.id])
        unchanged(package, before)
    assert lines_of(other) == [(i.order_item, 1) for i in other.items]
    assert db.session.scalar(select(PickupCode.failed_attempts).where(PickupCode.package_id == package.id)) == 0


def test_another_stores_package_is_not_found(make, store, sms):
    package, code = ready(make, store, sms)
    stranger = make.user("can")  # staff of another store

    with pytest.raises(NotFound):
        partial.hand_over(db.session, package.id, code=code, user_id=stranger.id,
                          store_ids=[s.id for s in stranger.stock_locations],
                          refused=[{"order_item": package.items[0].order_item, "reason": "damaged"}])
    unchanged(package, [(i.order_item, i.quantity) for i in package.items])


def test_without_codes_the_partial_pickup_needs_none(make, store, staff, sms):
    package, _code = ready(make, store, sms, quantities=(1, 1))
    db.session.execute(update(ApplicationSetting).where(ApplicationSetting.key == "IS_OTP_ENABLED")
                       .values(json_value=False))
    db.session.commit()

    result = partial.hand_over(db.session, package.id, code=None, user_id=staff.id, store_ids=[store.id],
                               refused=[{"order_item": package.items[0].order_item, "reason": "not_found"}])

    assert fresh(package.id).state == State.DELIVERED
    assert fresh(result.refund_package.id).state == State.PACKED_FOR_REFUND


def test_nothing_refused_is_the_plain_delivery(make, store, staff, sms):
    package, code = ready(make, store, sms)

    result = partial.hand_over(db.session, package.id, code=code, refused=[], user_id=staff.id,
                               store_ids=[store.id])

    assert result.delivered and result.refund_package is None
    assert fresh(package.id).state == State.DELIVERED
    assert db.session.scalar(select(func.count()).select_from(HandoverLine)) == 0


def test_a_split_package_needs_its_handover_and_the_counter_command_checks_the_code(make, store, staff, sms):
    """Packed for Refund at the counter run on its own (the API's command) refuses everything, with the code."""
    package, code = ready(make, store, sms, quantities=(1, 1))
    with pytest.raises(ValidationFailed, match="Choose why"):
        commands.run_command(db.session, package.id, slug=REFUND_AT_PICKUP, params={"otp": code},
                             user_id=staff.id, store_ids=[store.id])
    with pytest.raises(InvalidOtp):
        commands.run_command(db.session, package.id, slug=REFUND_AT_PICKUP,
                             params={"otp": wrong(code), "reason": "damaged"}, user_id=staff.id, store_ids=[store.id])
    assert fresh(package.id).state == State.READY_FOR_CUSTOMER_PICKUP

    commands.run_command(db.session, package.id, slug=REFUND_AT_PICKUP, params={"otp": code, "reason": "damaged"},
                         user_id=staff.id, store_ids=[store.id])

    assert fresh(package.id).state == State.PACKED_FOR_REFUND
    assert [(r.refused, r.reason) for r in db.session.scalars(select(HandoverLine))] == [(1, "damaged")] * 2


# --- REST API -----------------------------------------------------------------------------------------------------

def token_headers(user) -> dict:
    """Authorization header with a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def url(package: Package) -> str:
    """The partial pickup endpoint of a package."""
    return f"/api/v1/oms/packages/{package.id}/partial-pickup/"


def test_api_partial_pickup_answers_the_lines_and_the_refund_package(client, make, store, staff, sms):
    package, code = ready(make, store, sms)
    second = package.items[1]

    response = client.post(url(package), headers=token_headers(staff), json={
        "otp": code, "refused": [{"order_item": second.order_item, "quantity": 2, "reason": "damaged"}]})

    assert response.status_code == 200, response.json
    body = response.json
    assert body["delivered"] is True
    assert body["package"] == {"id": package.id, "number": package.number,
                               "status": {"code": 800, "value": "delivered", "label": "Delivered"}}
    assert body["refund_package"]["number"] == f"{package.number}-R1"
    assert body["refund_package"]["status"]["code"] == State.PACKED_FOR_REFUND
    assert [(line["order_item"], line["delivered"], line["refused"], line["reason"]) for line in body["lines"]] == [
        (package.items[0].order_item, 1, 0, None), (second.order_item, 1, 2, "damaged"),
        (package.items[2].order_item, 1, 0, None)]
    listed = client.get(f"/api/v1/oms/packages/{package.id}/handover-lines/", headers=token_headers(staff))
    assert listed.status_code == 200 and listed.json == body["lines"]


def test_api_wrong_code_unknown_reason_and_another_stores_package_change_nothing(client, make, store, staff, sms):
    package, code = ready(make, store, sms)
    before = lines_of(package)
    line = {"order_item": package.items[0].order_item, "reason": "damaged"}

    wrong_code = client.post(url(package), headers=token_headers(staff), json={"otp": wrong(code), "refused": [line]})
    assert wrong_code.status_code == 400 and wrong_code.json["code"] == "invalid_otp"
    assert wrong_code.json["field"] == "otp"
    bad_reason = client.post(url(package), headers=token_headers(staff),
                             json={"otp": code, "refused": [{**line, "reason": "lost"}]})
    assert bad_reason.status_code == 400
    other = client.post(url(package), headers=token_headers(make.user("can")), json={"otp": code, "refused": [line]})
    assert other.status_code == 404
    twice = client.post(url(package), headers=token_headers(staff), json={"otp": code, "refused": [line, line]})
    assert twice.status_code == 400 and twice.json["field"] == "refused"
    unchanged(package, before)


def test_api_full_refusal_needs_confirm_full(client, make, store, staff, sms):
    package, code = ready(make, store, sms, quantities=(1,))
    everything = [{"order_item": package.items[0].order_item, "reason": "changed_mind"}]

    unconfirmed = client.post(url(package), headers=token_headers(staff), json={"otp": code, "refused": everything})
    assert unconfirmed.status_code == 400 and unconfirmed.json["code"] == "full_refusal_unconfirmed"
    assert fresh(package.id).state == State.READY_FOR_CUSTOMER_PICKUP

    confirmed = client.post(url(package), headers=token_headers(staff),
                            json={"otp": code, "refused": everything, "confirm_full": True})
    assert confirmed.status_code == 200
    assert confirmed.json["delivered"] is False
    assert confirmed.json["refund_package"]["id"] == package.id
    assert fresh(package.id).state == State.PACKED_FOR_REFUND


def test_api_partial_pickup_is_in_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").json
    operation = document["paths"]["/api/v1/oms/packages/{package_id}/partial-pickup/"]["post"]
    assert "refused" in str(operation["requestBody"])
    assert "/api/v1/oms/packages/{package_id}/handover-lines/" in document["paths"]


def test_item_lines_only_move_within_one_order(make, store, staff, sms):
    """The split package's lines keep the order item, SKU and barcode of the lines they came from."""
    package, code = ready(make, store, sms)
    second = package.items[1]
    result = partial.hand_over(db.session, package.id, code=code, user_id=staff.id, store_ids=[store.id],
                               refused=[{"order_item": second.order_item, "quantity": 1, "reason": "damaged"}])
    [split] = db.session.scalars(select(PackageItem).where(PackageItem.package_id == result.refund_package.id))
    assert (split.order_item, split.sku, split.barcode, split.name, split.quantity) == (
        second.order_item, second.sku, second.barcode, second.name, 1)


# --- the handover dialog ------------------------------------------------------------------------------------------

DELIVER = "self-service-package-delivery"


def dialog_url(package: Package) -> str:
    """The handover dialog's URL (GET shows it, POST confirms it)."""
    return f"/packages/{package.id}/commands/{DELIVER}"


def test_the_dialog_offers_takes_it_or_a_reason_per_line_and_units_for_lines_of_several(client, make, store, zeynep,
                                                                                       sms):
    package, _code = ready(make, store, sms)
    first, second, _third = package.items

    body = text(client.get(dialog_url(package), headers=HX))

    assert 'id="refuse-lines"' in body and "<details" in body and 'id="refuse-lines" data-refuse-lines' in body
    assert body.count("data-refuse-line>") == 3
    for reason in ("damaged", "wrong_item", "changed_mind", "not_found"):
        assert f'name="refuse_{first.order_item}" value="{reason}"' in body
    assert f'name="refuse_{first.order_item}" value="" checked' in body
    assert f'name="refuse_qty_{second.order_item}"' in body and f'name="refuse_qty_{first.order_item}"' not in body
    assert 'id="refuse-all" data-refuse-all hidden' in body  # the full-refusal confirmation waits for JS or the server


def test_the_dialog_delivers_the_rest_and_refunds_the_refused_line(client, make, store, zeynep, sms):
    package, code = ready(make, store, sms)
    second = package.items[1]

    response = client.post(dialog_url(package), headers=HX, data={
        "otp": code, f"refuse_{second.order_item}": "damaged", f"refuse_qty_{second.order_item}": "1",
        f"refuse_{package.items[0].order_item}": ""})

    assert response.status_code == 200
    assert 'id="delivered-overlay"' in text(response)
    assert "went to" in json.loads(response.headers["HX-Trigger"])["toast"]["message"]
    assert fresh(package.id).state == State.DELIVERED
    refund = db.session.scalar(select(Package).where(Package.number == f"{package.number}-R1"))
    assert refund.state == State.PACKED_FOR_REFUND
    assert [(i.order_item, i.quantity) for i in refund.items] == [(second.order_item, 1)]


def test_the_dialog_asks_to_confirm_a_full_refusal_then_refuses(client, make, store, zeynep, sms):
    package, code = ready(make, store, sms, quantities=(1, 1))
    everything = {f"refuse_{item.order_item}": "not_found" for item in package.items}

    asked = client.post(dialog_url(package), headers=HX, data={"otp": code, **everything})

    assert asked.status_code == 422
    body = text(asked)
    assert 'id="refuse-all" data-refuse-all >' in body or 'id="refuse-all" data-refuse-all>' in body
    assert 'id="refusal-error"' in body and "Confirm the full refusal" in body
    assert 'id="otp-error"' not in body  # the code was not the problem
    assert f'name="refuse_{package.items[0].order_item}" value="not_found" checked' in body
    assert fresh(package.id).state == State.READY_FOR_CUSTOMER_PICKUP

    done = client.post(dialog_url(package), headers=HX, data={"otp": code, "confirm_full": "1", **everything})

    assert done.status_code == 200
    assert 'id="delivered-overlay"' not in text(done)
    assert "Packed for Refund" in json.loads(done.headers["HX-Trigger"])["toast"]["message"]
    assert fresh(package.id).state == State.PACKED_FOR_REFUND


def test_the_dialog_keeps_the_choices_after_a_wrong_code_and_changes_nothing(client, make, store, zeynep, sms):
    package, code = ready(make, store, sms)
    before = lines_of(package)
    first = package.items[0]

    response = client.post(dialog_url(package), headers=HX, data={"otp": wrong(code),
                                                                  f"refuse_{first.order_item}": "wrong_item"})

    assert response.status_code == 422
    body = text(response)
    assert 'id="otp-error"' in body and "Wrong code" in body
    assert f'name="refuse_{first.order_item}" value="wrong_item" checked' in body
    assert '<details class="refuse-lines" id="refuse-lines"' in body and "open>" in body
    unchanged(package, before)


def test_a_plain_handover_from_the_dialog_is_unchanged(client, make, store, zeynep, sms):
    package, code = ready(make, store, sms)
    blank = {f"refuse_{item.order_item}": "" for item in package.items}

    response = client.post(dialog_url(package), headers=HX, data={"otp": code, **blank})

    assert response.status_code == 200 and fresh(package.id).state == State.DELIVERED
    assert db.session.scalar(select(func.count()).select_from(HandoverLine)) == 0


def test_the_back_office_refuses_a_whole_package_with_a_reason_and_the_code(client, make, store, auth_actions, sms):
    make.user("ayse", role="admin")
    assert auth_actions.login("ayse").status_code == 302
    package, code = ready(make, store, sms)
    url = f"/packages/{package.id}/commands/{REFUND_AT_PICKUP}"

    page = text(client.get(f"/packages/{package.id}"))
    assert 'data-command="PACKAGE_PACKED_FOR_REFUND"' in page and "Refuse the whole package" in page
    form = text(client.get(url, headers=HX))
    assert 'id="consequence"' in form and "Packed for Refund" in form
    assert form.count('name="reason"') == 4 and 'id="otp"' in form and 'id="refuse-lines"' not in form

    no_reason = client.post(url, headers=HX, data={"otp": code})
    assert no_reason.status_code == 422 and 'id="reason-error"' in text(no_reason)
    assert fresh(package.id).state == State.READY_FOR_CUSTOMER_PICKUP

    done = client.post(url, headers=HX, data={"otp": code, "reason": "damaged"})

    assert done.status_code == 200
    assert fresh(package.id).state == State.PACKED_FOR_REFUND
    assert [r.reason for r in db.session.scalars(select(HandoverLine))] == ["damaged"] * 3


# --- dry run ------------------------------------------------------------------------------------------------------

def test_a_partial_pickup_previews_both_commands_and_writes_nothing(client, make, store, staff, sms):
    package, code = ready(make, store, sms)
    before = lines_of(package)
    version = fresh(package.id).version
    third = package.items[2]
    outbox_rows = db.session.scalar(select(func.count()).select_from(OutboxMessage))

    response = client.post(f"{url(package)}preview/", headers=token_headers(staff), json={
        "otp": wrong(code), "refused": [{"order_item": third.order_item, "reason": "not_found"}]})

    assert response.status_code == 200, response.json
    delivery, refund = response.json
    assert (delivery["slug"], delivery["from_status"]["code"], delivery["to_status"]["code"]) == (
        "self-service-package-delivery", State.READY_FOR_CUSTOMER_PICKUP, State.DELIVERED)
    assert "Refused: Item 3 ×1 (Not found)." in delivery["audit"]["note"]
    assert delivery["package_number"] == package.number and refund["package_number"] == f"{package.number}-R1"
    assert (refund["slug"], refund["to_status"]["code"], refund["quota_change"]) == (
        REFUND_AT_PICKUP, State.PACKED_FOR_REFUND, 0)
    assert [e["event_type"] for e in refund["events"]] == [
        catalogue.PACKAGE_CREATED, catalogue.PACKAGE_TRANSITIONED, catalogue.PACKAGE_PACKED_FOR_REFUND]
    delivered_event = next(e for e in delivery["events"] if e["event_type"] == catalogue.PACKAGE_DELIVERED)
    assert [line["refused"] for line in delivered_event["payload"]["handover"]["lines"]] == [0, 0, 1]
    # Nothing written, and the wrong code spent no try (a dry run checks its shape only).
    unchanged(package, before)
    assert fresh(package.id).version == version
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == outbox_rows
    assert db.session.scalar(select(PickupCode.failed_attempts).where(PickupCode.package_id == package.id)) == 0


def test_a_full_refusal_previews_the_packages_own_refund(client, make, store, staff, sms):
    package, code = ready(make, store, sms, quantities=(1,))

    response = client.post(f"{url(package)}preview/", headers=token_headers(staff), json={
        "otp": code, "refused": [{"order_item": package.items[0].order_item, "reason": "damaged"}]})

    assert response.status_code == 200
    [refund] = response.json
    assert (refund["package"], refund["to_status"]["code"]) == (package.id, State.PACKED_FOR_REFUND)
    assert fresh(package.id).state == State.READY_FOR_CUSTOMER_PICKUP
    assert db.session.scalar(select(func.count()).select_from(HandoverLine)) == 0


def test_the_vendors_packed_for_refund_from_waiting_gives_the_quota_back(make, store, staff):
    """The handler also runs the vendor's own transitions (Waiting -> Packed for Refund) when an admin adds them:
    a Waiting package takes up quota, a package Packed for Refund does not."""
    db.session.add(Transition(name="Package Packed for Refund", command_code="PACKAGE_PACKED_FOR_REFUND",
                              slug="package-packed-for-refund-from-waiting", source_state=State.WAITING,
                              destination_state=State.PACKED_FOR_REFUND, visibility=["OMS_WEB"]))
    package = make.package(store=store, state=State.WAITING)
    quota.recount(db.session)
    db.session.commit()
    assert db.session.get(StockLocation, store.id).quota == 1

    commands.run_command(db.session, package.id, slug="package-packed-for-refund-from-waiting",
                         params={"reason": "Customer cancelled before packing"}, user_id=staff.id,
                         store_ids=[store.id])

    db.session.expire_all()
    assert db.session.get(StockLocation, store.id).quota == 0
    assert fresh(package.id).state == State.PACKED_FOR_REFUND
    log = db.session.scalars(select(PackageLog).where(PackageLog.package_id == package.id)).first()
    assert log.note == "Customer cancelled before packing"
    assert db.session.scalar(select(func.count()).select_from(HandoverLine)) == 0


def test_the_package_pages_show_what_was_refused_and_where_it_went(client, make, store, zeynep, sms):
    package, code = ready(make, store, sms)
    third = package.items[2]
    plain = text(client.get(f"/packages/{package.id}"))
    assert 'id="handover-record"' not in plain

    result = partial.hand_over(db.session, package.id, code=code, user_id=zeynep.id, store_ids=[store.id],
                               refused=[{"order_item": third.order_item, "reason": "not_found"}])
    refund = result.refund_package

    page = text(client.get(f"/packages/{package.id}"))
    assert 'id="handover-record"' in page
    assert "<tr><td>Item 3</td><td class=\"num\">0</td><td class=\"num\">1</td><td>Not found</td></tr>" in page
    assert f'<a class="handover-link" href="/packages/{refund.id}">{refund.number}</a> (Packed for Refund)' in page
    split = text(client.get(f"/packages/{refund.id}"))
    assert 'id="handover-split-from"' in split
    assert f'<a class="handover-link" href="/packages/{package.id}">{package.number}</a>' in split
