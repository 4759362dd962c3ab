"""Integrated software runs package commands through POST /api/v1/oms/packages/{id}/command/."""
import re

import pytest
from sqlalchemy import func, select

from portal.accounts import auth
from portal.extensions import db
from portal.otp.models import OtpAttempt
from portal.packages.models import Package, PackageLog, Transition
from portal.packages.states import State


def token_headers(user) -> dict:
    """Authorization header with a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def command_url(package) -> str:
    """The command endpoint of a package."""
    return f"/api/v1/oms/packages/{package.id}/command/"


def state_of(package) -> int:
    """The package's state as stored now."""
    return db.session.scalar(select(Package.state).where(Package.id == package.id))


def logs_of(package) -> list[PackageLog]:
    """The package's audit rows, oldest first."""
    return list(db.session.scalars(
        select(PackageLog).where(PackageLog.package_id == package.id).order_by(PackageLog.id)))


def transition_id(slug: str) -> int:
    """The id the migration gave the transition with this slug."""
    return db.session.scalar(select(Transition.id).where(Transition.slug == slug))


def test_click_and_collect_from_waiting_to_delivered_with_the_customers_code(client, make, sms):
    store = make.store("IST-KDK", "Kadikoy")
    staff = make.user("kadikoy", stores=[store])
    headers = token_headers(staff)
    package = make.package(store=store)

    packed = client.post(command_url(package), headers=headers, json={
        "slug": "complete-packaging-without-shipment", "input_parameters": {"package": package.id}})
    assert packed.status_code == 204
    assert packed.data == b""
    assert state_of(package) == State.PACKED

    ready = client.post(command_url(package), headers=headers, json={
        "transition": transition_id("ready-for-customer-pickup"), "input_parameters": {"package": package.id}})
    assert ready.status_code == 204
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    assert sms.outbox[-1].to == "+905551112233"
    code = re.search(r"is (\d{6})\b", sms.outbox[-1].body).group(1)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    refused = client.post(command_url(package), headers=headers, json={
        "slug": "self-service-package-delivery", "input_parameters": {"package": package.id, "otp": wrong}})
    assert refused.status_code == 400
    assert refused.json["code"] == "invalid_otp"
    assert refused.json["field"] == "input_parameters.otp"
    assert refused.json["attempts_left"] == 4
    assert "Wrong code" in refused.json["detail"]
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    assert db.session.scalar(select(func.count()).select_from(OtpAttempt).where(
        OtpAttempt.package_id == package.id, OtpAttempt.success.is_(False))) == 1

    delivered = client.post(command_url(package), headers=headers, json={
        "slug": "self-service-package-delivery", "input_parameters": {"package": package.id, "otp": code}})
    assert delivered.status_code == 204
    assert state_of(package) == State.DELIVERED
    history = [(log.from_state, log.to_state, log.command, log.user_id) for log in logs_of(package)]
    assert history == [
        (State.WAITING, State.PACKED, "complete-packaging-without-shipment", staff.id),
        (State.PACKED, State.READY_FOR_CUSTOMER_PICKUP, "ready-for-customer-pickup", staff.id),
        (State.READY_FOR_CUSTOMER_PICKUP, State.DELIVERED, "self-service-package-delivery", staff.id),
    ]
    assert all(log.transition_id for log in logs_of(package))


def test_handover_without_a_code_is_refused_while_codes_are_on(client, make):
    package = make.package(state=State.READY_FOR_CUSTOMER_PICKUP)
    headers = token_headers(make.user(role="admin"))
    response = client.post(command_url(package), headers=headers,
                           json={"slug": "self-service-package-delivery", "input_parameters": {}})
    assert response.status_code == 400
    assert response.json == {"detail": "Enter the code from the customer's SMS.", "code": "validation_error",
                             "field": "input_parameters.otp"}
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_complete_packaging_with_the_seeds_single_barcode_object(client, make):
    store = make.store()
    package = make.package(store=store, click_collect=False, items=1)
    item = package.items[0]
    headers = token_headers(make.user(stores=[store]))
    response = client.post(command_url(package), headers=headers, json={
        "transition": transition_id("complete-packaging-from-waiting"),
        "slug": "complete-packaging-from-waiting",
        "input_parameters": {"package": package.id,
                             "barcodes": {"order_item": item.order_item, "barcode": item.barcode}},
    })
    assert response.status_code == 204
    assert state_of(package) == State.PACKED
    assert [log.command for log in logs_of(package)] == ["complete-packaging-from-waiting"]


def test_complete_packaging_with_a_list_of_barcodes_from_preparing(client, make):
    package = make.package(state=State.PREPARING, click_collect=False, items=2)
    headers = token_headers(make.user(role="brand_manager"))
    barcodes = [{"order_item": i.order_item, "barcode": i.barcode} for i in package.items]
    response = client.post(command_url(package), headers=headers, json={
        "slug": "complete-packaging-from-preparing", "input_parameters": {"barcodes": barcodes}})
    assert response.status_code == 204
    assert state_of(package) == State.PACKED


def test_complete_packaging_refuses_a_missing_or_mismatched_barcode(client, make):
    package = make.package(click_collect=False, items=2)
    first, second = package.items
    headers = token_headers(make.user(role="admin"))

    missing = client.post(command_url(package), headers=headers, json={
        "slug": "complete-packaging-from-waiting",
        "input_parameters": {"barcodes": [{"order_item": first.order_item, "barcode": first.barcode}]}})
    assert missing.status_code == 400
    assert missing.json["code"] == "validation_error"
    assert missing.json["field"] == "input_parameters.barcodes"
    assert missing.json["missing"] == [second.order_item]

    mismatched = client.post(command_url(package), headers=headers, json={
        "slug": "complete-packaging-from-waiting",
        "input_parameters": {"barcodes": [{"order_item": first.order_item, "barcode": first.barcode},
                                          {"order_item": second.order_item, "barcode": "0000000000000"}]}})
    assert mismatched.status_code == 400
    assert mismatched.json["mismatched"] == [second.order_item]

    none_given = client.post(command_url(package), headers=headers,
                             json={"slug": "complete-packaging-from-waiting", "input_parameters": {}})
    assert none_given.status_code == 400
    assert none_given.json["field"] == "input_parameters.barcodes"
    assert state_of(package) == State.WAITING
    assert logs_of(package) == []


def test_complete_packaging_from_packed_is_a_validation_error(client, make):
    package = make.package(state=State.PACKED, click_collect=False, items=1)
    item = package.items[0]
    headers = token_headers(make.user(role="admin"))
    response = client.post(command_url(package), headers=headers, json={
        "slug": "complete-packaging-from-waiting",
        "input_parameters": {"barcodes": {"order_item": item.order_item, "barcode": item.barcode}}})
    assert response.status_code == 400
    assert response.json["code"] == "command_rejected"
    assert "Packed All Items" in response.json["detail"]
    assert state_of(package) == State.PACKED


def test_transition_id_and_slug_naming_different_commands_is_refused(client, make):
    package = make.package()
    headers = token_headers(make.user(role="admin"))
    response = client.post(command_url(package), headers=headers, json={
        "transition": transition_id("deallocate-package-reservations"),
        "slug": "complete-packaging-without-shipment"})
    assert response.status_code == 400
    assert response.json["field"] == "slug"
    assert state_of(package) == State.WAITING


@pytest.mark.parametrize("body, field", [
    ({"input_parameters": {}}, "transition"),
    ({"slug": "no-such-command"}, "slug"),
    ({"transition": 999999}, "transition"),
    ({"transition": "seven"}, "transition"),
    ({"slug": ["complete-packaging-without-shipment"]}, "slug"),
    ({"slug": "complete-packaging-without-shipment", "input_parameters": ["package"]}, "input_parameters"),
])
def test_a_command_that_cannot_be_named_is_a_400(client, make, body, field):
    package = make.package()
    headers = token_headers(make.user(role="admin"))
    response = client.post(command_url(package), headers=headers, json=body)
    assert response.status_code == 400
    assert response.json["field"] == field
    assert response.json["code"] == "validation_error"
    assert state_of(package) == State.WAITING


def test_input_parameters_package_must_be_the_package_in_the_url(client, make):
    package, other = make.package(), make.package()
    headers = token_headers(make.user(role="admin"))
    response = client.post(command_url(package), headers=headers, json={
        "slug": "complete-packaging-without-shipment", "input_parameters": {"package": other.id}})
    assert response.status_code == 400
    assert response.json["field"] == "input_parameters.package"
    assert state_of(package) == State.WAITING
    assert state_of(other) == State.WAITING


@pytest.mark.parametrize("raw", [b'{"slug": "complete-packaging-without-shipment"', b"", b"[1, 2]", b"slug=x"])
def test_a_body_that_is_not_a_json_object_is_a_json_400(client, make, raw):
    package = make.package()
    headers = token_headers(make.user(role="admin"))
    response = client.post(command_url(package), headers=headers, data=raw, content_type="application/json")
    assert response.status_code == 400
    assert response.is_json
    assert response.json["code"] == "validation_error"
    assert state_of(package) == State.WAITING


def test_staff_cannot_touch_another_stores_package(client, make):
    mine, theirs = make.store(), make.store()
    package = make.package(store=theirs)
    headers = token_headers(make.user(stores=[mine]))
    response = client.post(command_url(package), headers=headers,
                           json={"slug": "complete-packaging-without-shipment"})
    assert response.status_code == 404
    assert response.json == {"detail": "Package not found.", "code": "not_found"}
    assert state_of(package) == State.WAITING


def test_an_unknown_package_is_a_404(client, make):
    headers = token_headers(make.user(role="admin"))
    response = client.post("/api/v1/oms/packages/424242/command/", headers=headers,
                           json={"slug": "complete-packaging-without-shipment"})
    assert response.status_code == 404
    assert response.json["code"] == "not_found"


def test_a_staff_token_acts_with_the_staff_screens_visibility(client, make):
    package = make.package(state=State.SHIPPED, click_collect=False)
    staff = make.user(stores=[package.stock_location])
    # Update shipment status is OMS WEB only: the staff screens do not offer it, so neither does a staff token.
    refused = client.post(command_url(package), headers=token_headers(staff),
                          json={"slug": "update-shipment-status-shipped"})
    assert refused.status_code == 400
    assert "not available" in refused.json["detail"]
    assert state_of(package) == State.SHIPPED

    manager = make.user(role="brand_manager")
    response = client.post(command_url(package), headers=token_headers(manager),
                           json={"slug": "update-shipment-status-shipped"})
    assert response.status_code == 204
    assert state_of(package) == State.DELIVERED


@pytest.mark.parametrize("app_config", [{"OTP_USER_FAILURE_LIMIT": 2}])
def test_too_many_wrong_codes_from_one_token_is_a_429(client, make, sms):
    store = make.store()
    headers = token_headers(make.user(stores=[store]))
    packages = [make.package(store=store, state=State.PACKED) for _ in range(2)]
    for package in packages:
        assert client.post(command_url(package), headers=headers,
                           json={"slug": "ready-for-customer-pickup"}).status_code == 204
    wrong = {"slug": "self-service-package-delivery", "input_parameters": {"otp": "000000"}}
    codes = [re.search(r"is (\d{6})\b", m.body).group(1) for m in sms.outbox]
    if "000000" in codes:  # one chance in a million: the guess is right
        wrong["input_parameters"]["otp"] = "999999"
    assert client.post(command_url(packages[0]), headers=headers, json=wrong).status_code == 400
    assert client.post(command_url(packages[1]), headers=headers, json=wrong).status_code == 400
    limited = client.post(command_url(packages[1]), headers=headers, json={
        "slug": "self-service-package-delivery", "input_parameters": {"otp": codes[1]}})
    assert limited.status_code == 429
    assert limited.json["code"] == "rate_limited"
    assert state_of(packages[1]) == State.READY_FOR_CUSTOMER_PICKUP
