"""The customer names a delegate from the customer page (issue 9): the form (CSRF, confirmation, validation,
rate limits), the delegate's SMS with a code and a link of their own, the delegate's page, the staff scanning the
delegate's QR code, and removing or replacing the delegate ending their link; forged and expired links refused."""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from portal.db_types import utcnow
from portal.errors import CommandRejected
from portal.extensions import db
from portal.otp.models import PickupCode
from portal.packages import commands, customer_link, delegate
from portal.packages.delegate_models import PackageDelegate
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.settings import service as settings
from tests.floor import HX, text

BASE = "https://shop.example"
PHONE = "+90 532 777 88 99"
CLEAN_PHONE = "+905327778899"
LINK = re.compile(re.escape(BASE + customer_link.PATH) + r"([A-Z2-7]+)")


@pytest.fixture
def app_config():
    """The customer page's public address, so that SMS sent outside a request carry the link too."""
    return {"CUSTOMER_LINK_BASE_URL": BASE, "OTP_RESEND_LIMIT": 20}


def ready(make, store, sms) -> tuple[Package, str, str]:
    """A package made ready for pickup, its code and the token of the link its customer got."""
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    body = sms.outbox[-1].body
    return package, re.search(r" is (\d+)\.", body).group(1), LINK.search(body).group(1)


def name_from_page(client, token: str, name: str = "Ayse Yilmaz", phone: str = PHONE, confirm: bool = True):
    """Post the page's naming form as the browser does."""
    data = {"name": name, "phone": phone, **({"confirm": "yes"} if confirm else {})}
    return client.post(f"{customer_link.PATH}{token}/delegate", data=data)


def delegate_sms(sms) -> tuple[str, str]:
    """The newest SMS to the delegate's number: its code and its link's token."""
    [*_, message] = [m for m in sms.outbox if m.to == CLEAN_PHONE]
    return re.search(r"Your pickup code is (\d+)\.", message.body).group(1), LINK.search(message.body).group(1)


def active_delegate(package: Package) -> PackageDelegate | None:
    """The package's delegate now."""
    db.session.expire_all()
    return delegate.current_delegate(db.session, package.id)


def test_the_customer_page_offers_the_form_with_a_csrf_token_and_shows_only_you_collect(client, make, store, sms):
    _package, _code, token = ready(make, store, sms)
    page = text(client.get(customer_link.PATH + token))
    assert 'id="collector"' in page and "Only you, with the code above." in page
    assert f'action="{customer_link.PATH}{token}/delegate"' in page
    assert 'name="csrf_token"' in page
    assert "<script" not in page and " onclick" not in page


def test_naming_from_the_page_texts_the_delegate_their_own_code_and_link_and_the_page_shows_them_masked(
        client, make, store, sms):
    package, code, token = ready(make, store, sms)
    sent_before = len(sms.outbox)
    response = name_from_page(client, token)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"{customer_link.PATH}{token}?done=named#collector")
    named = active_delegate(package)
    assert named.name == "Ayse Yilmaz" and named.phone == CLEAN_PHONE and named.source == PackageDelegate.CUSTOMER
    assert named.named_by_id is None
    # One SMS: the delegate's (the customer named them, so no notice goes to the customer).
    assert [m.to for m in sms.outbox[sent_before:]] == [CLEAN_PHONE]
    delegate_code, delegate_token = delegate_sms(sms)
    assert delegate_code != code and delegate_token != token
    [row] = db.session.scalars(select(PackageLog).where(PackageLog.package_id == package.id,
                                                        PackageLog.command == delegate.NAME_COMMAND))
    assert "by the customer" in row.note and row.user_id is None
    # The customer's page now says who collects, masked, and the confirmation.
    page = text(client.get(response.headers["Location"]))
    assert "Ayse Y. (+90********99)" in page and "Yilmaz" not in page and "5327778899" not in page
    assert "They were sent an SMS with a code of their own" in page
    # The delegate's page: their code, as digits and QR, and no naming form.
    mine = client.get(customer_link.PATH + delegate_token)
    assert mine.status_code == 200
    assert "".join(re.findall(r'class="digit-group">(\d+)<', text(mine))) == delegate_code
    assert 'id="for-delegate"' in text(mine) and 'id="collector"' not in text(mine)
    view = customer_link.customer_view(db.session, delegate_token)
    assert view.for_delegate and view.delegate is None and view.code == delegate_code
    assert view.qr_content == customer_link.qr_payload(delegate_token) and 'class="qr-code"' in text(mine)
    # The delegate's link cannot name anyone.
    assert name_from_page(client, delegate_token, phone="+905550000000").status_code == 410
    assert active_delegate(package).id == named.id


def test_the_staff_scan_of_the_delegates_qr_opens_the_handover_with_their_code_and_delivers(
        client, make, store, sms, zeynep):
    package, _code, token = ready(make, store, sms)
    name_from_page(client, token)
    delegate_code, delegate_token = delegate_sms(sms)
    scanned = customer_link.scan(db.session, customer_link.qr_payload(delegate_token), [store.id])
    assert scanned.package.id == package.id and scanned.code == delegate_code
    response = client.get("/packages", query_string={"search": customer_link.qr_payload(delegate_token)},
                          headers={**HX, "HX-Trigger": "package-filters"})
    target = response.headers.get("HX-Redirect")
    assert target and parse_qs(urlsplit(target).query)["qr"] == [delegate_token]
    page = text(client.get(target))
    opener = re.search(r'data-open-modal="([^"]+)"', page).group(1).replace("&amp;", "&")
    form = client.get(opener, headers=HX)
    assert re.search(r'id="otp"[^>]*value="' + delegate_code + '"', text(form), re.S)
    response = client.post(f"/packages/{package.id}/commands/self-service-package-delivery",
                           data={"otp": delegate_code}, headers=HX)
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(Package, package.id).state == State.DELIVERED
    assert delegate.collector_name(db.session, package.id) == "Ayse Yilmaz"
    assert client.get(customer_link.PATH + delegate_token).status_code == 410


def test_removing_from_the_page_kills_the_delegates_code_link_and_qr(client, make, store, sms):
    package, code, token = ready(make, store, sms)
    name_from_page(client, token)
    delegate_code, delegate_token = delegate_sms(sms)
    page = text(client.get(customer_link.PATH + token))
    assert f'action="{customer_link.PATH}{token}/delegate/remove"' in page
    response = client.post(f"{customer_link.PATH}{token}/delegate/remove")
    assert response.status_code == 303 and "done=removed" in response.headers["Location"]
    assert active_delegate(package) is None
    assert client.get(customer_link.PATH + delegate_token).status_code == 410
    with pytest.raises(CommandRejected, match="out of date"):
        customer_link.scan(db.session, customer_link.qr_payload(delegate_token), [store.id])
    assert db.session.scalars(select(PackageLog).where(PackageLog.package_id == package.id,
                                                       PackageLog.command == delegate.REMOVE_COMMAND)).one()
    # The customer's own link and code still work.
    page = text(client.get(customer_link.PATH + token + "?done=removed"))
    assert "Only you, with the code above." in page and "can no longer collect your order" in page
    assert customer_link.scan(db.session, customer_link.qr_payload(token), [store.id]).code == code
    assert delegate_code != code


def test_replacing_the_delegate_ends_the_first_ones_link(client, make, store, sms):
    package, _code, token = ready(make, store, sms)
    name_from_page(client, token)
    _first_code, first_token = delegate_sms(sms)
    assert name_from_page(client, token, name="Mehmet Demir", phone="+90 555 444 55 66").status_code == 303
    assert active_delegate(package).name == "Mehmet Demir"
    assert client.get(customer_link.PATH + first_token).status_code == 410
    second = LINK.search(sms.outbox[-1].body).group(1)
    assert sms.outbox[-1].to == "+905554445566"
    assert client.get(customer_link.PATH + second).status_code == 200


@pytest.mark.parametrize("data, field, message", [
    ({"name": "", "phone": PHONE, "confirm": "yes"}, "name", "Enter the name of the person who collects."),
    ({"name": "Ayse", "phone": "12", "confirm": "yes"}, "phone", None),
    ({"name": "Ayse", "phone": PHONE}, "confirm", "Tick the box to confirm this person may collect your order."),
])
def test_bad_input_is_refused_with_a_plain_message_and_nothing_is_sent(client, make, store, sms, data, field,
                                                                       message):
    package, _code, token = ready(make, store, sms)
    sent_before = len(sms.outbox)
    response = client.post(f"{customer_link.PATH}{token}/delegate", data=data)
    assert response.status_code == 422
    page = text(response)
    assert f'id="delegate-{field}-error"' in page and 'aria-invalid="true"' in page
    if message:
        assert message in page
    assert "<details id=\"delegate-details\" open>" in page
    assert active_delegate(package) is None and len(sms.outbox) == sent_before


def test_the_customers_own_number_is_refused(client, make, store, sms):
    package, _code, token = ready(make, store, sms)
    response = name_from_page(client, token, phone=package.customer.phone)
    assert response.status_code == 422 and "That is the customer&#39;s own number" in text(response)
    assert active_delegate(package) is None


def test_forged_expired_and_used_links_are_refused_with_the_plain_page(client, make, store, sms):
    package, _code, token = ready(make, store, sms)
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (forged, "NOTATOKEN"):
        assert name_from_page(client, bad).status_code == 410
        assert client.post(f"{customer_link.PATH}{bad}/delegate/remove").status_code == 410
    db.session.execute(update(Package).where(Package.id == package.id).values(hold_until=utcnow() - timedelta(1)))
    db.session.execute(update(PickupCode).where(PickupCode.package_id == package.id)
                       .values(expires_at=utcnow() - timedelta(1)))
    db.session.commit()
    response = name_from_page(client, token)
    assert response.status_code == 410 and "This link is not valid any more" in text(response)
    assert active_delegate(package) is None


def test_a_delegates_link_stops_when_the_hold_ends(client, make, store, sms):
    package, _code, token = ready(make, store, sms)
    name_from_page(client, token)
    _delegate_code, delegate_token = delegate_sms(sms)
    db.session.execute(update(Package).where(Package.id == package.id).values(hold_until=utcnow() - timedelta(1)))
    db.session.commit()
    assert client.get(customer_link.PATH + delegate_token).status_code == 410


def test_the_forms_need_the_csrf_token(app, client, make, store, sms):
    package, _code, token = ready(make, store, sms)
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        assert name_from_page(client, token).status_code == 400
        assert active_delegate(package) is None
        page = text(client.get(customer_link.PATH + token))
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        response = client.post(f"{customer_link.PATH}{token}/delegate",
                               data={"name": "Ayse Yilmaz", "phone": PHONE, "confirm": "yes", "csrf_token": csrf})
        assert response.status_code == 303
        assert active_delegate(package) is not None
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


@pytest.mark.parametrize("app_config", [{"CUSTOMER_LINK_BASE_URL": BASE, "RATELIMIT_ENABLED": True}])
def test_the_forms_are_rate_limited_per_address(client, make, store, sms):
    _package, _code, token = ready(make, store, sms)
    statuses = [client.post(f"{customer_link.PATH}{token}/delegate/remove").status_code for _ in range(11)]
    assert statuses[:10] == [303] * 10 and statuses[10] == 429


def test_with_codes_off_the_delegate_is_named_and_gets_no_link(client, make, store, sms):
    settings.set_value(db.session, settings.IS_OTP_ENABLED, False, user_id=None)
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    token = LINK.search(sms.outbox[-1].body).group(1)
    assert name_from_page(client, token).status_code == 303
    assert active_delegate(package).name == "Ayse Yilmaz"
    [message] = [m for m in sms.outbox if m.to == CLEAN_PHONE]
    assert "Bring this message" in message.body and customer_link.PATH not in message.body


def token_headers(user) -> dict:
    """Authorization header with a new API token of the user."""
    from portal.accounts import auth

    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def test_the_api_names_and_removes_the_delegate_from_the_customers_link(client, make, store, sms):
    package, _code, token = ready(make, store, sms)
    staff = token_headers(make.user("ayse", stores=[store]))
    outsider = token_headers(make.user("mehmet"))
    url = f"/api/v1/oms/customer-links/{token}/delegate/"
    body = {"name": "Ayse Yilmaz", "phone": PHONE}
    assert client.put(url, json=body, headers=outsider).status_code == 404
    assert client.put(url, json=body).status_code == 401
    to_customer = sum(1 for m in sms.outbox if m.to == package.customer.phone)
    response = client.put(url, json=body, headers=staff)
    assert response.status_code == 200, response.json
    assert sum(1 for m in sms.outbox if m.to == package.customer.phone) == to_customer  # their own link: no notice
    assert response.json["delegate"]["name"] == "Ayse Yilmaz"
    assert response.json["delegate"]["phone"] == "+90********99" and response.json["delegate"]["source"] == "customer"
    _delegate_code, delegate_token = delegate_sms(sms)
    # The delegate's own link names no one; a bad one is 404.
    assert client.put(f"/api/v1/oms/customer-links/{delegate_token}/delegate/", json=body,
                      headers=staff).status_code == 404
    edited = token[:-2] + ("AB" if token.endswith("AA") else "AA")  # never the token itself (1 in 1,024 ends so)
    assert client.put(f"/api/v1/oms/customer-links/{edited}/delegate/", json=body,
                      headers=staff).status_code == 404
    assert client.put(url, json={"name": "", "phone": PHONE}, headers=staff).status_code == 400
    assert client.delete(url, headers=staff).status_code == 204
    assert active_delegate(package) is None
    assert client.get(customer_link.PATH + delegate_token).status_code == 410
    assert client.delete(url, headers=staff).status_code == 204  # none named: still 204
