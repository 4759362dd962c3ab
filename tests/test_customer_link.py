"""The QR handover (issue 9): the customer's link in the SMS, the customer page and its limits (forged, tampered,
expired, replaced, delivered), the staff scanning the customer's QR code (scan box, open handover, other package,
other store, replay after delivery, forged), delivery through the usual code check, and the store's opening hours."""
from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from portal.db_types import utcnow
from portal.errors import CommandRejected
from portal.extensions import db
from portal.otp import service as otp
from portal.otp.models import OtpAttempt, PickupCode
from portal.packages import commands, customer_link, hold
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.settings import service as settings
from tests.floor import HX, text

BASE = "https://shop.example"
DELIVER = "self-service-package-delivery"


@pytest.fixture
def app_config():
    """The customer page's public address, so that SMS sent outside a request carry the link too."""
    return {"CUSTOMER_LINK_BASE_URL": BASE, "OTP_RESEND_LIMIT": 20}


def ready(make, store, sms) -> tuple[Package, str, str]:
    """A package made ready for pickup, its code and the token of the link its customer got."""
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    body = sms.outbox[-1].body
    code = re.search(r" is (\d+)\.", body).group(1)
    token = re.search(re.escape(BASE + customer_link.PATH) + r"([A-Z2-7]+)", body).group(1)
    return package, code, token


def fresh(package: Package) -> Package:
    """The package as the database has it now."""
    db.session.expire_all()
    return db.session.get(Package, package.id)


def deliver(client, package: Package, code: str):
    """Confirm the handover form with a code, as the dialog posts it."""
    return client.post(f"/packages/{package.id}/commands/{DELIVER}", data={"otp": code}, headers=HX)


def flip(token: str, index: int) -> str:
    """The token with one base32 character changed."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    char = token[index]
    return token[:index] + alphabet[(alphabet.index(char) + 1) % 32] + token[index + 1:]


# Tokens ---------------------------------------------------------------------------------------------------------


def test_a_token_carries_the_package_and_the_code_sealed_and_short(app):
    token = customer_link.make_token(123456, "004217")
    assert re.fullmatch(r"[A-Z2-7]+", token) and len(token) <= 40
    assert "004217" not in token and "123456" not in token
    assert customer_link.read_token(token) == customer_link.Claim(123456, "004217")
    assert customer_link.read_token(token.lower()) == customer_link.Claim(123456, "004217")
    assert customer_link.read_token(customer_link.make_token(7, None)) == customer_link.Claim(7, None)
    assert len(customer_link.qr_payload(token)) <= 64  # the scan box reads 64 characters


@pytest.mark.parametrize("bad", ["", "ABC", "A" * 39, "!" * 39, "A" * 200, "OMSQR", "PK0000001"])
def test_junk_is_no_token(app, bad):
    assert customer_link.read_token(bad) is None


def test_every_changed_character_and_another_secret_key_break_a_token(app):
    token = customer_link.make_token(42, "123456")
    for index in range(len(token)):
        assert customer_link.read_token(flip(token, index)) is None, index
    # The last character also holds unused bits: no other spelling of it decodes, whatever the token's length.
    for package_id in (7, 42, 123456, 2**40):
        for code in (None, "1234", "123456"):
            token = customer_link.make_token(package_id, code)
            for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567":
                if letter != token[-1]:
                    assert customer_link.read_token(token[:-1] + letter) is None, (package_id, code, letter)
    app.config["SECRET_KEY"] = "another-secret-key"
    assert customer_link.read_token(token) is None


# The SMS and the customer page -------------------------------------------------------------------------------


def test_the_ready_sms_carries_the_link_and_the_page_shows_only_the_code_store_hours_and_date(client, make, store,
                                                                                               sms):
    store.address, store.opening_hours = "Moda Cad. 12", "Mon-Sat 10:00-22:00\n\nSun 12:00-20:00"
    db.session.commit()
    package, code, token = ready(make, store, sms)
    response = client.get(customer_link.PATH + token)
    page = text(response)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store" and '<meta name="referrer" content="no-referrer">' in page
    assert "noindex" in response.headers["X-Robots-Tag"]
    digits = re.search(r'id="pickup-code">(.*?)</p>', page, re.S).group(1)
    assert re.sub(r"<[^>]+>|Code:|\s", "", digits) == code
    assert "<svg" in page and 'class="qr-code"' in page
    assert "Kadıköy Store" in page and "Moda Cad. 12, Istanbul" in page
    assert "<li>Mon-Sat 10:00-22:00</li>" in page and "<li>Sun 12:00-20:00</li>" in page
    assert hold.pick_up_by_text(fresh(package)) in page
    # Nothing else about the order: no number, order number, customer, phone or items.
    for private in (package.number, package.order_number, "Ada", package.customer.last_name, "+90555",
                    "Item 1", package.items[0].barcode):
        assert private not in page
    assert "<script" not in page and " style=" not in page and "onclick" not in page


def test_the_qr_code_holds_the_prefix_and_the_token(app, make, store, sms):
    _package, code, token = ready(make, store, sms)
    view = customer_link.customer_view(db.session, token)
    assert view.code == code
    segno = pytest.importorskip("segno")
    expected = segno.make(customer_link.qr_payload(token), error="m").svg_inline(
        scale=1, border=4, dark="#000", light="#fff", svgclass="qr-code", lineclass=None, omitsize=True)
    assert str(view.qr) == expected


def test_without_a_base_url_the_request_host_is_used_and_outside_a_request_no_link_is_sent(app, client, make,
                                                                                          store, sms, zeynep):
    app.config["CUSTOMER_LINK_BASE_URL"] = ""
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    assert "/c/" not in sms.outbox[-1].body
    response = client.post(f"/packages/{package.id}/pickup-code", headers=HX)
    assert response.status_code == 200
    assert re.search(r"http://localhost/c/[A-Z2-7]+", sms.outbox[-1].body)


def test_extension_app_mode_gets_the_link_in_the_event_secret_and_no_code_no_secret(app):
    secret = customer_link.secret_payload(5, "123456")
    assert secret["pickup_code"] == "123456"
    token = secret["customer_link"].removeprefix(BASE + customer_link.PATH)
    assert customer_link.read_token(token) == customer_link.Claim(5, "123456")
    assert customer_link.secret_payload(5, None) is None
    app.config["CUSTOMER_LINK_BASE_URL"] = ""
    assert customer_link.secret_payload(5, "123456") == {"pickup_code": "123456"}


@pytest.mark.parametrize("how", ["forged", "tampered", "other-key", "unknown-package", "expired-hold",
                                 "code-expired", "resent", "delivered", "refused", "locked", "released"])
def test_a_link_that_no_longer_opens_anything_gets_one_plain_page(app, client, make, store, sms, zeynep, how):
    package, code, token = ready(make, store, sms)
    if how == "forged":
        token = "A" * len(token)
    elif how == "tampered":
        token = flip(token, 3)
    elif how == "other-key":
        app.config["SECRET_KEY"] = "someone-else"
    elif how == "unknown-package":
        token = customer_link.make_token(package.id + 1000, code)
    elif how == "expired-hold":
        db.session.execute(update(Package).where(Package.id == package.id)
                           .values(hold_until=utcnow() - timedelta(minutes=1)))
    elif how == "code-expired":
        db.session.execute(update(PickupCode).where(PickupCode.package_id == package.id)
                           .values(expires_at=utcnow() - timedelta(minutes=1)))
    elif how == "resent":
        commands.resend_pickup_code(db.session, package.id, user_id=None, store_ids=None)
    elif how == "delivered":
        assert deliver(client, package, code).status_code == 200
        assert fresh(package).state == State.DELIVERED
    elif how == "refused":
        db.session.execute(update(Package).where(Package.id == package.id).values(state=State.NEEDS_RESCHEDULING))
    elif how == "locked":
        db.session.execute(update(PickupCode).where(PickupCode.package_id == package.id)
                           .values(status=PickupCode.LOCKED))
    elif how == "released":
        hold.release_codes(db.session, package.id)
    db.session.commit()
    response = client.get(customer_link.PATH + token)
    page = text(response)
    assert response.status_code == 410
    assert "This link is not valid any more" in page
    for private in (code, package.number, package.order_number, "Ada", "Kadıköy", "<svg"):
        assert private not in page


def test_an_extended_hold_keeps_the_link_working(app, client, make, store, sms):
    package, code, token = ready(make, store, sms)
    db.session.execute(update(Package).where(Package.id == package.id)
                       .values(hold_until=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert client.get(customer_link.PATH + token).status_code == 410
    hold.extend_hold(db.session, package.id, days=2, reason="Travelling", user_id=None, store_ids=None)
    response = client.get(customer_link.PATH + token)
    assert response.status_code == 200 and code in text(response).replace("</span><span class=\"digit-group\">", "")


def test_with_codes_off_the_link_shows_a_qr_code_without_digits(app, client, make, store, sms):
    settings.set_value(db.session, settings.IS_OTP_ENABLED, False, user_id=None)
    db.session.commit()
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    token = re.search(r"/c/([A-Z2-7]+)", sms.outbox[-1].body).group(1)
    assert customer_link.read_token(token) == customer_link.Claim(package.id, None)
    response = client.get(customer_link.PATH + token)
    assert response.status_code == 200 and 'id="pickup-code"' not in text(response) and "<svg" in text(response)


def test_checking_a_link_counts_no_attempt(app, client, make, store, sms):
    package, _code, token = ready(make, store, sms)
    for _ in range(3):
        client.get(customer_link.PATH + flip(token, 2))
        client.get(customer_link.PATH + token)
    assert db.session.scalars(select(OtpAttempt)).all() == []
    assert otp.active_code(db.session, package.id).failed_attempts == 0


# Staff scanning the customer's QR code ------------------------------------------------------------------------


def scan_box(client, payload: str):
    """Type a scan into the home's scan box as htmx posts it (Enter)."""
    return client.get("/packages", query_string={"search": payload},
                      headers={**HX, "HX-Trigger": "package-filters"})


def test_a_scanned_qr_opens_the_handover_with_the_code_filled_in_and_confirming_delivers(client, make, store, sms,
                                                                                         zeynep):
    package, code, token = ready(make, store, sms)
    response = scan_box(client, customer_link.qr_payload(token))
    target = response.headers.get("HX-Redirect")
    assert target, text(response)
    assert urlsplit(target).path == f"/packages/{package.id}"
    args = parse_qs(urlsplit(target).query)
    assert args["handover"] == ["1"] and args["qr"] == [token]
    page = text(client.get(target))
    opener = re.search(r'data-open-modal="([^"]+)"', page).group(1).replace("&amp;", "&")
    assert "/handover/qr" in opener
    form = client.get(opener, headers=HX)
    assert form.status_code == 200
    assert re.search(r'id="otp"[^>]*value="' + code + '"', text(form), re.S)
    assert "customer's QR code" in text(form)
    # Confirming posts the code like a typed one: the code check, the audit row, one successful attempt.
    assert deliver(client, package, code).status_code == 200
    assert fresh(package).state == State.DELIVERED
    attempts = db.session.scalars(select(OtpAttempt).where(OtpAttempt.package_id == package.id)).all()
    assert [a.success for a in attempts] == [True]
    log = db.session.scalars(select(PackageLog).where(PackageLog.package_id == package.id)
                             .order_by(PackageLog.id.desc())).first()
    assert log.to_state == State.DELIVERED and log.user_id == zeynep.id


def test_a_qr_replayed_after_delivery_is_refused(client, make, store, sms, zeynep):
    package, code, token = ready(make, store, sms)
    deliver(client, package, code)
    response = scan_box(client, customer_link.qr_payload(token))
    assert "HX-Redirect" not in response.headers
    assert f"This QR code was already used: package {package.number} was delivered." in text(response)
    form = client.get(f"/packages/{package.id}/handover/qr", query_string={"token": token}, headers=HX)
    assert form.status_code == 422 and "already used" in text(form)


def test_a_forged_or_tampered_qr_is_refused(client, make, store, sms, zeynep):
    _package, _code, token = ready(make, store, sms)
    for payload in (customer_link.QR_PREFIX + "A" * len(token), customer_link.qr_payload(flip(token, 5))):
        response = scan_box(client, payload)
        assert "HX-Redirect" not in response.headers
        assert "This QR code is not valid." in text(response)
    assert db.session.scalars(select(OtpAttempt)).all() == []


def test_a_qr_of_another_store_is_refused_without_naming_the_package(client, make, store, sms, zeynep):
    other = make.store("ANK-01", "Ankara Store")
    package, _code, token = ready(make, other, sms)
    response = scan_box(client, customer_link.qr_payload(token))
    assert "HX-Redirect" not in response.headers
    assert "This QR code is for a package of another store." in text(response)
    assert package.number not in text(response)
    # Nor through the handover's own scan (the package is not hers: 404 before anything is read).
    assert client.get(f"/packages/{package.id}/handover/qr", query_string={"token": token},
                      headers=HX).status_code == 404


def test_a_qr_of_another_package_on_an_open_handover_is_refused_and_counts_no_try(client, make, store, sms, zeynep):
    first, _code, _token = ready(make, store, sms)
    second, _code2, token2 = ready(make, store, sms)
    response = client.get(f"/packages/{first.id}/handover/qr", query_string={"token": token2}, headers=HX)
    assert response.status_code == 422
    assert f"This QR code is for another package ({second.number}), not this one." in text(response)
    assert not re.search(r'id="otp"[^>]*value="\d', text(response))
    assert otp.active_code(db.session, first.id).failed_attempts == 0
    assert fresh(first).state == State.READY_FOR_CUSTOMER_PICKUP


def test_a_qr_of_an_older_code_is_refused_as_out_of_date(client, make, store, sms, zeynep):
    package, _code, token = ready(make, store, sms)
    commands.resend_pickup_code(db.session, package.id, user_id=None, store_ids=None)
    response = scan_box(client, customer_link.qr_payload(token))
    assert "This QR code is out of date" in text(response)


def test_the_domain_scan_names_each_refusal(app, make, store, sms):
    package, code, token = ready(make, store, sms)
    other_store = make.store()
    assert customer_link.scan(db.session, customer_link.qr_payload(token), [store.id]).code == code
    assert customer_link.scan(db.session, token.lower(), None, package_id=package.id).package.id == package.id
    with pytest.raises(CommandRejected, match="another store"):
        customer_link.scan(db.session, token, [other_store.id])
    with pytest.raises(CommandRejected, match="another package"):
        customer_link.scan(db.session, token, None, package_id=package.id + 1)
    db.session.execute(update(Package).where(Package.id == package.id)
                       .values(hold_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    with pytest.raises(CommandRejected, match="has ended"):
        customer_link.scan(db.session, token, None)


def test_a_wrong_code_after_a_qr_prefill_still_counts_towards_the_limits(client, make, store, sms, zeynep):
    package, code, token = ready(make, store, sms)
    wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
    response = deliver(client, package, wrong)
    assert response.status_code == 422
    assert otp.active_code(db.session, package.id).failed_attempts == 1
    assert client.get(customer_link.PATH + token).status_code == 200  # a wrong try does not end the link


# Opening hours ---------------------------------------------------------------------------------------------------


def test_a_store_without_hours_or_address_shows_neither(client, make, store, sms):
    store.city = ""
    db.session.commit()
    _package, _code, token = ready(make, store, sms)
    page = text(client.get(customer_link.PATH + token))
    assert "Opening hours" not in page and "<address" not in page and "Kadıköy Store" in page


# The API ----------------------------------------------------------------------------------------------------------


def token_headers(user) -> dict:
    """Authorization header with a new API token of the user."""
    from portal.accounts import auth

    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def test_the_api_reads_a_link_like_the_page_and_refuses_what_the_page_refuses(client, make, store, sms):
    store.opening_hours = "Mon-Sat 10:00-22:00"
    db.session.commit()
    package, code, token = ready(make, store, sms)
    staff = token_headers(make.user("ayse", stores=[store]))
    outsider = token_headers(make.user("mehmet"))
    response = client.get(f"/api/v1/oms/customer-links/{token}/", headers=staff)
    assert response.status_code == 200, response.json
    body = response.json
    assert body["code"] == code and body["qr_content"] == customer_link.qr_payload(token)
    assert body["store_name"] == "Kadıköy Store" and body["opening_hours"] == ["Mon-Sat 10:00-22:00"]
    assert body["pick_up_by"] == hold.pick_up_by_text(fresh(package)) and body["hold_until"]
    assert set(body) == {"code", "qr_content", "store_name", "address", "opening_hours", "pick_up_by", "hold_until"}
    assert client.get(f"/api/v1/oms/customer-links/{token}/", headers=outsider).status_code == 404
    assert client.get(f"/api/v1/oms/customer-links/{flip(token, 1)}/", headers=staff).status_code == 404
    assert client.get(f"/api/v1/oms/customer-links/{token}/").status_code == 401
    commands.resend_pickup_code(db.session, package.id, user_id=None, store_ids=None)
    assert client.get(f"/api/v1/oms/customer-links/{token}/", headers=staff).status_code == 404


def test_managers_set_a_stores_opening_hours_and_staff_may_not(client, make, store):
    manager = token_headers(make.user("boss", role="brand_manager"))
    staff = token_headers(make.user("ayse", stores=[store]))
    url = f"/api/v1/oms/stock-locations/{store.id}/opening-hours/"
    response = client.put(url, json={"opening_hours": [" Mon-Sat 10:00-22:00 ", "", "Sun 12:00-20:00"]},
                          headers=manager)
    assert response.status_code == 200, response.json
    assert response.json == {"stock_location": store.id, "opening_hours": ["Mon-Sat 10:00-22:00", "Sun 12:00-20:00"]}
    assert client.get(url, headers=manager).json["opening_hours"] == ["Mon-Sat 10:00-22:00", "Sun 12:00-20:00"]
    db.session.expire_all()
    assert store.opening_hours == "Mon-Sat 10:00-22:00\nSun 12:00-20:00"
    assert client.put(url, json={"opening_hours": ["x" * 81]}, headers=manager).status_code in (400, 422)
    assert client.put(url, json={"opening_hours": ["a\nb"]}, headers=manager).status_code in (400, 422)
    assert client.put(url, json={"opening_hours": ["a\x00b"]}, headers=manager).status_code in (400, 422)
    assert client.put(url, json={"opening_hours": ["a"] * 15}, headers=manager).status_code in (400, 422)
    assert client.put(url, json={"opening_hours": []}, headers=staff).status_code == 403
    assert client.get("/api/v1/oms/stock-locations/99999/opening-hours/", headers=manager).status_code == 404


def test_a_dry_run_of_ready_for_pickup_masks_the_link_as_it_masks_the_code(app, make, store, sms):
    from portal.packages import dry_run

    package = make.package(store=store, state=State.PACKED)
    result = dry_run.preview_command(db.session, package.id, slug="ready-for-customer-pickup", params={},
                                     user_id=None, store_ids=None)
    body = result.sms[0].body
    assert BASE + customer_link.PATH in body
    assert not re.search(customer_link.PATH + "[A-Z2-7]{20}", body)
    assert sms.outbox == [] and fresh(package).state == State.PACKED
