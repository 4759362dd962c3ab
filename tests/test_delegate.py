"""Delegate collector (issue 9): someone else collects a ready package with a pickup code of their own.

Domain (naming, replacing, removing; the handover through run_command), the REST API, and the abuse cases: a
wrong code counts against the delegate's code too, a removed or replaced delegate's code is dead, a package not
ready refuses, another store's staff cannot see or name, naming is rate-limited.
"""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from portal.accounts import auth
from portal.db_types import utcnow
from portal.errors import CommandRejected, InvalidOtp, NotFound, RateLimited, ValidationFailed
from portal.extensions import db
from portal.otp.models import OtpAttempt, PickupCode
from portal.outbox.models import OutboxMessage
from portal.packages import commands, delegate, hold_sweep
from portal.packages.delegate_models import PackageDelegate
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.settings import service as settings
from portal.webhooks import catalogue
from tests.floor import HX, text

DELIVER = "self-service-package-delivery"
DELEGATE_PHONE = "+905329876543"


@pytest.fixture
def staff(make, store):
    """Staff of the store."""
    return make.user("zeynep", stores=[store])


def ready(make, store) -> Package:
    """A click & collect package ready for pickup; the customer was texted a code."""
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    return package


def code_to(sms, phone: str) -> str:
    """The pickup code in the newest SMS to this number that carries one."""
    for message in reversed(sms.outbox):
        match = re.search(r"(?:code is|is) (\d{6})\.", message.body) if message.to == phone else None
        if match:
            return match.group(1)
    raise AssertionError(f"no code was texted to {phone}")


def wrong(*codes: str) -> str:
    """A six-digit code that is none of these."""
    candidate = 0
    while f"{candidate:06d}" in codes:
        candidate += 1
    return f"{candidate:06d}"


def name(package, user, **extra):
    """Staff name the delegate Deniz for the package."""
    values = {"name": "Deniz Yılmaz", "phone": "+90 532 987 65 43", **extra}
    return delegate.name_delegate(db.session, package.id, user_id=user.id, store_ids=user.store_ids, **values)


def hand_over(package, code, user):
    """Staff type a code at the handover."""
    return commands.run_command(db.session, package.id, slug=DELIVER, params={"otp": code}, user_id=user.id,
                                store_ids=user.store_ids)


def state_of(package) -> int:
    """The package's state in the database."""
    db.session.expire_all()
    return db.session.get(Package, package.id).state


def delivered_log(package) -> PackageLog:
    """The audit row of the package's delivery."""
    return db.session.scalar(select(PackageLog).where(PackageLog.package_id == package.id,
                                                      PackageLog.to_state == State.DELIVERED))


def events_of(event_type: str) -> list[OutboxMessage]:
    """Outbox events of a type, oldest first."""
    return list(db.session.scalars(select(OutboxMessage).where(OutboxMessage.event_type == event_type)
                                   .order_by(OutboxMessage.id)))


# -- the phone and the name ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("typed", "clean"), [
    ("+90 532 987 65 43", "+905329876543"), ("0090 (532) 987-65-43", "+905329876543"),
    ("0532.987.65.43", "05329876543")])
def test_a_delegates_number_is_normalised(app, typed, clean):
    assert delegate.clean_phone(typed) == clean


@pytest.mark.parametrize("typed", ["", "12345", "+90 532 abc", "+1234567890123456", "++905329876543"])
def test_a_malformed_number_is_refused(app, typed):
    with pytest.raises(ValidationFailed) as caught:
        delegate.clean_phone(typed)
    assert caught.value.field == "phone"


def test_a_phone_is_masked_but_for_its_ends(app):
    assert delegate.mask_phone("+905329876543") == "+90********43"


# -- domain ------------------------------------------------------------------------------------------------

def test_the_delegate_gets_a_code_of_their_own_and_it_delivers_naming_them_on_the_audit_row_and_event(
        make, store, staff, sms):
    package = ready(make, store)
    customer_code = code_to(sms, package.customer.phone)

    change = name(package, staff)

    assert change.delegate.phone == DELEGATE_PHONE and change.delegate.status == PackageDelegate.ACTIVE
    delegate_code = code_to(sms, DELEGATE_PHONE)
    assert delegate_code != customer_code
    body = [m.body for m in sms.outbox if m.to == DELEGATE_PHONE][-1]
    assert package.order_number in body and store.name in body and package.customer.full_name in body
    # The customer is told, with the delegate's number masked.
    notice = [m for m in sms.outbox if m.to == package.customer.phone][-1]
    assert notice.to == package.customer.phone and "Deniz Yılmaz" in notice.body and "+90********43" in notice.body
    named_row = db.session.scalar(select(PackageLog).where(PackageLog.command == delegate.NAME_COMMAND))
    assert named_row.user_id == staff.id and "Deniz Yılmaz" in named_row.note and DELEGATE_PHONE not in named_row.note
    assert db.session.scalar(select(func.count()).select_from(PickupCode).where(
        PickupCode.package_id == package.id, PickupCode.status == PickupCode.ACTIVE)) == 2

    result = hand_over(package, delegate_code, staff)

    assert result.to_state == State.DELIVERED and "Deniz Yılmaz" in result.message
    log = delivered_log(package)
    assert log.user_id == staff.id and "delegate Deniz Yılmaz (+90********43)" in log.note
    [delivered] = events_of(catalogue.PACKAGE_DELIVERED)
    assert delivered.payload["payload"]["collected_by"] == {
        "type": "delegate", "delegate": {"id": change.delegate.id, "name": "Deniz Yılmaz", "phone": DELEGATE_PHONE,
                                         "source": "staff"}}
    [transitioned] = [e for e in events_of(catalogue.PACKAGE_TRANSITIONED)
                      if e.payload["payload"]["status"]["value"] == "delivered"]
    assert transitioned.payload["payload"]["collected_by"]["type"] == "delegate"
    db.session.expire_all()
    assert db.session.get(PackageDelegate, change.delegate.id).status == PackageDelegate.COLLECTED
    assert delegate.collector_name(db.session, package.id) == "Deniz Yılmaz"
    # The customer's code died with the handover.
    assert db.session.scalar(select(func.count()).select_from(PickupCode).where(
        PickupCode.package_id == package.id, PickupCode.status == PickupCode.ACTIVE)) == 0


def test_the_customers_own_code_keeps_working_with_a_delegate_named(make, store, staff, sms):
    package = ready(make, store)
    customer_code = code_to(sms, package.customer.phone)
    change = name(package, staff)

    hand_over(package, customer_code, staff)

    assert state_of(package) == State.DELIVERED
    assert "Pickup code verified." in delivered_log(package).note
    [delivered] = events_of(catalogue.PACKAGE_DELIVERED)
    assert delivered.payload["payload"]["collected_by"] == {"type": "customer"}
    db.session.expire_all()
    # The delegate's naming ended with the handover; their code no longer works.
    assert db.session.get(PackageDelegate, change.delegate.id).status == PackageDelegate.ENDED
    assert delegate.current_delegate(db.session, package.id) is None


def test_removing_the_delegate_kills_their_code_and_is_audited(make, store, staff, sms):
    package = ready(make, store)
    name(package, staff)
    delegate_code = code_to(sms, DELEGATE_PHONE)

    change = delegate.remove_delegate(db.session, package.id, user_id=staff.id, store_ids=staff.store_ids)

    assert change.previous.name == "Deniz Yılmaz" and "no longer works" in change.message
    with pytest.raises(InvalidOtp):
        hand_over(package, delegate_code, staff)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    removed = db.session.scalar(select(PackageLog).where(PackageLog.command == delegate.REMOVE_COMMAND))
    assert removed.user_id == staff.id and "Deniz Yılmaz" in removed.note
    actions = [e.payload["payload"]["delegate_change"]["action"]
               for e in events_of(catalogue.PACKAGE_DELEGATE_CHANGED)]
    assert actions == ["named", "removed"]
    # The customer's code still works.
    hand_over(package, code_to(sms, package.customer.phone), staff)
    assert state_of(package) == State.DELIVERED


def test_removing_when_there_is_no_delegate_writes_nothing(make, store, staff, sms):
    package = ready(make, store)

    change = delegate.remove_delegate(db.session, package.id, user_id=staff.id, store_ids=staff.store_ids)

    assert change.previous is None
    assert db.session.scalar(select(PackageLog).where(PackageLog.command == delegate.REMOVE_COMMAND)) is None


def test_replacing_the_delegate_kills_the_first_ones_code(make, store, staff, sms):
    package = ready(make, store)
    name(package, staff)
    first_code = code_to(sms, DELEGATE_PHONE)

    change = name(package, staff, name="Ece Kaya", phone="+905301112299")

    assert change.previous.name == "Deniz Yılmaz" and change.delegate.name == "Ece Kaya"
    db.session.expire_all()
    assert [d.status for d in db.session.scalars(select(PackageDelegate).order_by(PackageDelegate.id))] == [
        PackageDelegate.REPLACED, PackageDelegate.ACTIVE]
    second_code = code_to(sms, "+905301112299")
    if first_code != second_code:  # one time in a million the two are equal
        with pytest.raises(InvalidOtp):
            hand_over(package, first_code, staff)
    hand_over(package, second_code, staff)
    assert "Ece Kaya" in delivered_log(package).note
    assert db.session.scalar(select(PackageLog).where(PackageLog.command == delegate.REPLACE_COMMAND))


def test_wrong_codes_count_against_the_delegates_code_too_and_lock_it(make, store, staff, sms):
    package = ready(make, store)
    customer_code = code_to(sms, package.customer.phone)
    name(package, staff)
    delegate_code = code_to(sms, DELEGATE_PHONE)
    guess = wrong(customer_code, delegate_code)

    for left in (4, 3, 2, 1):
        with pytest.raises(InvalidOtp, match=f"{left} tr"):
            hand_over(package, guess, staff)
    with pytest.raises(InvalidOtp, match="now locked"):
        hand_over(package, guess, staff)
    with pytest.raises(InvalidOtp, match="locked"):
        hand_over(package, delegate_code, staff)

    db.session.expire_all()
    assert {c.status for c in db.session.scalars(select(PickupCode).where(PickupCode.package_id == package.id))} == {
        PickupCode.LOCKED}
    assert db.session.scalar(select(func.count()).select_from(OtpAttempt).where(
        OtpAttempt.package_id == package.id, OtpAttempt.success.is_(False))) == 5
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_the_per_user_limit_holds_the_delegates_code_too(make, store, staff, sms, app):
    app.config["OTP_USER_FAILURE_LIMIT"] = 2
    first, second = ready(make, store), ready(make, store)
    name(second, staff)
    delegate_code = code_to(sms, DELEGATE_PHONE)
    for _try in range(2):  # wrong codes on another package count for the user
        with pytest.raises(InvalidOtp):
            hand_over(first, wrong(code_to(sms, first.customer.phone)), staff)

    with pytest.raises(RateLimited):
        hand_over(second, delegate_code, staff)
    assert state_of(second) == State.READY_FOR_CUSTOMER_PICKUP


def test_a_delegates_code_is_worthless_on_another_package(make, store, staff, sms):
    package, other = ready(make, store), ready(make, store)
    name(package, staff)
    delegate_code = code_to(sms, DELEGATE_PHONE)
    if delegate_code == code_to(sms, other.customer.phone):
        pytest.skip("one time in a million the two random codes are equal")

    with pytest.raises(InvalidOtp):
        hand_over(other, delegate_code, staff)
    assert state_of(other) == State.READY_FOR_CUSTOMER_PICKUP


def test_naming_again_sends_the_delegate_a_fresh_code_after_a_lock(make, store, staff, sms):
    package = ready(make, store)
    name(package, staff)
    first = code_to(sms, DELEGATE_PHONE)
    for _try in range(5):
        with pytest.raises(InvalidOtp):
            hand_over(package, wrong(first, code_to(sms, package.customer.phone)), staff)

    name(package, staff)
    hand_over(package, code_to(sms, DELEGATE_PHONE), staff)

    assert state_of(package) == State.DELIVERED


def test_an_expired_hold_releases_the_delegates_code_and_ends_their_naming(make, store, staff, sms):
    package = ready(make, store)
    change = name(package, staff)
    delegate_code = code_to(sms, DELEGATE_PHONE)
    past = utcnow() - timedelta(minutes=1)
    db.session.execute(update(Package).where(Package.id == package.id).values(hold_until=past))
    db.session.execute(update(PickupCode).where(PickupCode.package_id == package.id).values(expires_at=past))
    db.session.commit()

    run = hold_sweep.start_sweep(db.session)

    assert run.status == run.DONE and run.expired == 1
    db.session.expire_all()
    assert db.session.get(PackageDelegate, change.delegate.id).status == PackageDelegate.ENDED
    assert delegate.who_collects(db.session, package).delegate is None
    with pytest.raises(InvalidOtp):
        hand_over(package, delegate_code, staff)
    with pytest.raises(CommandRejected, match="hold"):  # no new code past the hold: extend it first
        name(package, staff, name="Ece Kaya", phone="+905301112299")


def test_a_package_not_ready_refuses_a_delegate(make, store, staff, sms):
    package = make.package(store=store, state=State.PACKED)

    with pytest.raises(CommandRejected):
        name(package, staff)

    assert db.session.scalar(select(func.count()).select_from(PackageDelegate)) == 0
    assert sms.outbox == []


def test_another_stores_staff_can_neither_name_nor_remove(make, store, sms):
    package = ready(make, store)
    other = make.user("elsewhere")  # staff of a store of their own

    with pytest.raises(NotFound):
        name(package, other)
    with pytest.raises(NotFound):
        delegate.remove_delegate(db.session, package.id, user_id=other.id, store_ids=other.store_ids)
    assert db.session.scalar(select(func.count()).select_from(PackageDelegate)) == 0


@pytest.mark.parametrize(("values", "field"), [
    ({"name": "  "}, "name"), ({"name": "x" * 121}, "name"), ({"phone": "call me"}, "phone"),
    ({"phone": "+90 555 111 22 33"}, "phone")])  # the last one is the customer's own number
def test_a_missing_name_or_a_bad_or_the_customers_own_number_is_refused(make, store, staff, sms, values, field):
    package = ready(make, store)
    sent = len(sms.outbox)

    with pytest.raises(ValidationFailed) as caught:
        name(package, staff, **values)

    assert caught.value.field == field
    assert len(sms.outbox) == sent and delegate.current_delegate(db.session, package.id) is None


def test_naming_is_rate_limited_like_resending_a_code(make, store, staff, sms, app):
    package = ready(make, store)
    for _time in range(app.config["OTP_RESEND_LIMIT"] + 1):
        name(package, staff)

    with pytest.raises(RateLimited):
        name(package, staff)
    assert db.session.scalar(select(func.count()).select_from(PackageDelegate)) == app.config["OTP_RESEND_LIMIT"] + 1


def test_resending_the_customers_code_leaves_the_delegates_working(make, store, staff, sms):
    package = ready(make, store)
    name(package, staff)
    delegate_code = code_to(sms, DELEGATE_PHONE)

    commands.resend_pickup_code(db.session, package.id, user_id=staff.id, store_ids=staff.store_ids)

    hand_over(package, delegate_code, staff)
    assert state_of(package) == State.DELIVERED


def test_a_delegate_named_by_the_customer_page_needs_no_user_and_no_notice(make, store, sms):
    package = ready(make, store)
    sent = len(sms.outbox)

    change = delegate.name_delegate(db.session, package.id, name="Deniz", phone=DELEGATE_PHONE, store_ids=None,
                                    source="customer")

    assert change.delegate.source == "customer" and change.delegate.named_by_id is None
    assert [m.to for m in sms.outbox[sent:]] == [DELEGATE_PHONE]
    assert "by the customer" in db.session.scalar(
        select(PackageLog.note).where(PackageLog.command == delegate.NAME_COMMAND))


def test_with_codes_off_the_delegate_is_named_and_texted_without_a_code(make, store, staff, sms):
    admin = make.user("root", role="admin")
    settings.set_value(db.session, settings.IS_OTP_ENABLED, False, user_id=admin.id)
    package = ready(make, store)

    name(package, staff)

    assert "Bring this message" in [m.body for m in sms.outbox if m.to == DELEGATE_PHONE][-1]
    assert db.session.scalar(select(func.count()).select_from(PickupCode)) == 0
    assert delegate.who_collects(db.session, package).delegate.name == "Deniz Yılmaz"


def test_in_extension_mode_the_event_carries_the_delegates_code_and_no_sms_goes(make, store, staff, sms,
                                                                                  monkeypatch):
    admin = make.user("root", role="admin")
    settings.set_value(db.session, settings.PICKUP_CODE_DELIVERY, settings.EXTENSION_APP, user_id=admin.id)
    package = ready(make, store)
    sent = len(sms.outbox)
    secrets = []
    record = delegate.events.record_event

    def spy(session, event_type, payload, package_id=None, secret_payload=None):
        """Keep what only the Extension application may read, then record the event as usual."""
        secrets.append(secret_payload)
        return record(session, event_type, payload, package_id=package_id, secret_payload=secret_payload)

    monkeypatch.setattr(delegate.events, "record_event", spy)

    name(package, staff)

    assert len(sms.outbox) == sent
    [event] = events_of(catalogue.PACKAGE_DELEGATE_CHANGED)
    assert event.payload["payload"]["delegate_change"]["delegate"]["name"] == "Deniz Yılmaz"
    assert "pickup_code" not in event.payload["payload"]
    [secret] = secrets
    hand_over(package, secret["pickup_code"], staff)  # the code the Extension application got works
    assert "Deniz Yılmaz" in delivered_log(package).note


# -- API --------------------------------------------------------------------------------------------------

def token_headers(user) -> dict:
    """Authorization header with a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def url(package) -> str:
    """The delegate endpoint of a package."""
    return f"/api/v1/oms/packages/{package.id}/delegate/"


def test_api_names_reads_and_removes_a_delegate(client, make, store, staff, sms):
    package = ready(make, store)
    headers = token_headers(staff)

    empty = client.get(url(package), headers=headers)
    assert empty.status_code == 200
    assert empty.json["delegate"] is None and empty.json["customer_phone"] == "+90********33"

    named = client.put(url(package), headers=headers, json={"name": "Deniz Yılmaz", "phone": "+90 532 987 65 43"})
    assert named.status_code == 200, named.json
    assert named.json["delegate"]["name"] == "Deniz Yılmaz" and named.json["delegate"]["phone"] == "+90********43"
    assert named.json["delegate"]["source"] == "staff"
    assert client.get(url(package), headers=headers).json["delegate"]["id"] == named.json["delegate"]["id"]
    delegate_code = code_to(sms, DELEGATE_PHONE)

    removed = client.delete(url(package), headers=headers)
    assert removed.status_code == 204
    assert client.get(url(package), headers=headers).json["delegate"] is None
    refused = client.post(f"/api/v1/oms/packages/{package.id}/command/", headers=headers,
                          json={"slug": DELIVER, "input_parameters": {"otp": delegate_code}})
    assert refused.status_code == 400 and state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_api_the_delegates_code_delivers_through_the_command_endpoint(client, make, store, staff, sms):
    package = ready(make, store)
    headers = token_headers(staff)
    client.put(url(package), headers=headers, json={"name": "Deniz Yılmaz", "phone": DELEGATE_PHONE})

    done = client.post(f"/api/v1/oms/packages/{package.id}/command/", headers=headers,
                       json={"slug": DELIVER, "input_parameters": {"otp": code_to(sms, DELEGATE_PHONE)}})

    assert done.status_code == 204
    assert "Deniz Yılmaz" in delivered_log(package).note


def test_api_refuses_a_package_not_ready_a_bad_phone_and_another_store(client, make, store, staff, sms):
    headers = token_headers(staff)
    packed = make.package(store=store, state=State.PACKED)
    package = ready(make, store)
    other = token_headers(make.user("elsewhere"))

    not_ready = client.put(url(packed), headers=headers, json={"name": "Deniz", "phone": DELEGATE_PHONE})
    bad_phone = client.put(url(package), headers=headers, json={"name": "Deniz", "phone": "call me"})
    foreign = client.put(url(package), headers=other, json={"name": "Deniz", "phone": DELEGATE_PHONE})
    foreign_read = client.get(url(package), headers=other)
    foreign_delete = client.delete(url(package), headers=other)

    assert not_ready.status_code == 400 and not_ready.json["code"] == "command_rejected"
    assert bad_phone.status_code == 400 and bad_phone.json["field"] == "phone"
    assert (foreign.status_code, foreign_read.status_code, foreign_delete.status_code) == (404, 404, 404)
    assert db.session.scalar(select(func.count()).select_from(PackageDelegate)) == 0


def test_the_delegate_endpoints_are_in_the_openapi_document(client, make, staff):
    document = client.get("/api/v1/openapi.json").json
    operations = document["paths"]["/api/v1/oms/packages/{package_id}/delegate/"]
    assert set(operations) >= {"get", "put", "delete"}


# -- the store floor (web) --------------------------------------------------------------------------------------

def toast(response) -> dict:
    """The toast the answer asks the page to show."""
    return json.loads(response.headers["HX-Trigger"])["toast"]


def form(**extra) -> dict:
    """The "Someone else collects" form as the handover dialog posts it."""
    return {"name": "Deniz Yılmaz", "phone": "+90 532 987 65 43", "confirm": "1", "in_dialog": "1", **extra}


def test_the_dialog_names_a_delegate_and_shows_who_collects_with_either_code(client, make, store, zeynep, sms):
    package = ready(make, store)
    dialog = text(client.get(f"/packages/{package.id}/commands/{DELIVER}", headers=HX))
    assert 'id="delegate-toggle"' in dialog and 'id="delegate-who"' not in dialog

    response = client.post(f"/packages/{package.id}/delegate", data=form(), headers=HX)

    body = text(response)
    assert response.status_code == 200 and toast(response)["level"] == "success"
    assert "Deniz Yılmaz" in toast(response)["message"]
    who = re.search(r'<p class="delegate-who" id="delegate-who">.*?</p>', body, re.S).group(0)
    assert "Deniz Yılmaz" in who and "+90********43" in who and DELEGATE_PHONE not in body
    assert "Code from the customer's or the delegate's SMS" in body
    assert 'id="delegate-remove"' in body
    assert 'hx-swap-oob="outerHTML"' in body and 'id="delegate-box"' in body  # the panel behind, out of band
    assert code_to(sms, DELEGATE_PHONE)


def test_the_delegates_code_in_the_dialog_shows_the_delegate_as_delivered_to(client, make, store, zeynep, sms):
    package = ready(make, store)
    client.post(f"/packages/{package.id}/delegate", data=form(), headers=HX)

    response = client.post(f"/packages/{package.id}/commands/{DELIVER}", data={"otp": code_to(sms, DELEGATE_PHONE)},
                           headers=HX)

    assert response.status_code == 200 and state_of(package) == State.DELIVERED
    assert "Delivered to Deniz Yılmaz" in text(response)


@pytest.mark.parametrize(("values", "field"), [({"confirm": ""}, "confirm"), ({"phone": "nope"}, "phone"),
                                               ({"name": ""}, "name")])
def test_a_refused_form_comes_back_open_with_the_error_on_its_field(client, make, store, zeynep, sms, values,
                                                                    field):
    package = ready(make, store)

    response = client.post(f"/packages/{package.id}/delegate", data=form(**values), headers=HX)

    body = text(response)
    assert response.status_code == 422 and toast(response)["level"] == "error"
    assert re.search(r'<details class="delegate-details" id="delegate-details" open>', body)
    field_html = re.search(rf'<input id="delegate-{field}"[^>]*>', body, re.S).group(0)
    assert 'aria-invalid="true"' in field_html
    assert delegate.current_delegate(db.session, package.id) is None


def test_removing_in_the_dialog_kills_the_code_and_the_line(client, make, store, zeynep, sms):
    package = ready(make, store)
    client.post(f"/packages/{package.id}/delegate", data=form(), headers=HX)
    delegate_code = code_to(sms, DELEGATE_PHONE)

    response = client.post(f"/packages/{package.id}/delegate/remove", data={"in_dialog": "1"}, headers=HX)

    assert response.status_code == 200 and 'id="delegate-who"' not in text(response)
    refused = client.post(f"/packages/{package.id}/commands/{DELIVER}", data={"otp": delegate_code}, headers=HX)
    assert refused.status_code == 422 and state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_the_package_page_and_the_ready_tab_show_the_delegate(client, make, store, zeynep, sms):
    package = ready(make, store)
    client.post(f"/packages/{package.id}/delegate", data=form(), headers=HX)

    page = text(client.get(f"/packages/{package.id}"))
    box = re.search(r'<div class="delegate-box" id="delegate-box">.*?</div>', page, re.S).group(0)
    assert "Deniz Yılmaz" in box and "delegate=1" in box
    queue = text(client.get("/packages?tab=pickup"))
    assert re.search(rf'data-delegate="{package.id}">Collects: Deniz Yılmaz<', queue)


def test_another_stores_staff_get_a_404(client, make, store, auth_actions, sms):
    package = ready(make, store)
    make.user("elsewhere")
    auth_actions.login("elsewhere")

    assert client.post(f"/packages/{package.id}/delegate", data=form(), headers=HX).status_code == 404
    assert client.post(f"/packages/{package.id}/delegate/remove", headers=HX).status_code == 404
    assert delegate.current_delegate(db.session, package.id) is None
