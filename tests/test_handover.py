"""The counter's handover and the package page's actions: one primary action, confirmations, wrong codes, locks,
resends that always answer, the per-user limit's wait and a manager lifting it."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from portal.db_types import utcnow
from portal.extensions import db
from portal.otp import service as otp
from portal.otp.models import OtpAttempt, PickupCode
from portal.packages import commands
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from tests.floor import HX, text

DELIVER = "self-service-package-delivery"


@pytest.fixture
def app_config():
    """A roomy resend limit, so that a resend's answer is tested and not the limit (except where stated)."""
    return {"OTP_RESEND_LIMIT": 20}


def state_of(package) -> int:
    """The package's state in the database."""
    db.session.expire_all()
    return db.session.get(Package, package.id).state


def ready(make, store, sms) -> tuple[Package, str]:
    """A click & collect package ready for pickup, and the code its customer got."""
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    return package, re.search(r" is (\d+)\.", sms.outbox[-1].body).group(1)


def wrong(code: str) -> str:
    """A code of the same length that is certainly not this one."""
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def toast(response) -> dict:
    """The toast the answer asks the page to show."""
    return json.loads(response.headers["HX-Trigger"])["toast"]


def primary_and_more(page: str) -> tuple[list[str], list[str]]:
    """The commands of the page's primary button and of the "More" list, by command code."""
    actions = re.search(r'<div class="actions" id="package-actions".*?(?=<div class="grid-2">)', page, re.S).group(0)
    primary = re.findall(r'data-command="([A-Z_]+)"\s+id="primary-action"', actions)
    more_html = re.search(r'<details class="more-actions".*?</details>', actions, re.S)
    more = re.findall(r'data-command="([A-Z_]+)"', more_html.group(0)) if more_html else []
    return primary, more


@pytest.mark.parametrize("state, primary, more", [
    (State.WAITING, ["COMPLETE_PACKAGING"],
     ["DEALLOCATE_PACKAGE_RESERVATIONS", "COMPLETE_PACKAGING_WITHOUT_SHIPMENT", "PACKAGE_REFUSE_WITH_DENIAL_REASON"]),
    (State.PREPARING, ["COMPLETE_PACKAGING"], ["PACKAGE_REFUSE_WITH_DENIAL_REASON"]),
    (State.PACKED, ["READY_FOR_PICKUP"], []),
    (State.READY_FOR_CUSTOMER_PICKUP, ["SELF_SERVICE_PACKAGE_DELIVERY_COMMAND"], []),
    (State.DELIVERED, [], []),
])
def test_each_state_shows_one_primary_action_and_the_rest_under_more(client, make, store, zeynep, state, primary,
                                                                       more):
    package = make.package(store=store, state=state)

    page = text(client.get(f"/packages/{package.id}"))

    got_primary, got_more = primary_and_more(page)
    assert got_primary == primary
    assert sorted(got_more) == sorted(more)
    assert page.count('id="primary-action"') == len(primary)


def test_a_cargo_package_ships_as_its_primary_action(client, make, store, zeynep):
    package = make.package(store=store, state=State.PACKED, click_collect=False)

    assert primary_and_more(text(client.get(f"/packages/{package.id}")))[0] == ["SHIP_PACKAGE"]


@pytest.mark.parametrize("slug, words", [
    ("complete-packaging-without-shipment", "without checking a single item"),
    ("deallocate-package-reservations", "go back to the shelf stock"),
    ("refuse-with-denial-reason-from-waiting", "leaves this store"),
])
def test_commands_without_the_usual_check_ask_first_and_name_the_consequence(client, make, store, zeynep, slug,
                                                                              words):
    package = make.package(store=store, state=State.WAITING)

    page = text(client.get(f"/packages/{package.id}"))
    form = text(client.get(f"/packages/{package.id}/commands/{slug}", headers=HX))

    # The page offers a link to the confirmation step, not a one-tap form posting the command.
    assert f'hx-get="/packages/{package.id}/commands/{slug}"' in page
    assert f'hx-post="/packages/{package.id}/commands/{slug}"' not in page
    assert words in form and "Are you sure?" in form
    assert state_of(package) == State.WAITING


def test_a_wrong_code_clears_the_field_shows_the_tries_left_and_leaves_the_package(client, make, store, zeynep, sms):
    package, code = ready(make, store, sms)

    response = client.post(f"/packages/{package.id}/commands/{DELIVER}", data={"otp": wrong(code)}, headers=HX)

    body = text(response)
    assert response.status_code == 422
    field = re.search(r'<input id="otp"[^>]*>', body, re.S).group(0)
    assert "value=" not in field and 'aria-invalid="true"' in field
    assert "4 tries left." in body
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_a_locked_code_makes_send_a_new_code_the_primary_action(client, make, store, zeynep, sms, app):
    package, code = ready(make, store, sms)
    for _ in range(app.config["OTP_MAX_ATTEMPTS"]):
        response = client.post(f"/packages/{package.id}/commands/{DELIVER}", data={"otp": wrong(code)}, headers=HX)

    body = text(response)
    assert "The code is now locked" in body
    confirm = re.search(r'<button type="submit" class="confirm[^"]*"[^>]*>', body).group(0)
    assert "disabled" in confirm
    resend = re.search(r'<button type="submit" id="dialog-resend"[^>]*>', body).group(0)
    assert 'class="resend-primary"' in resend and "autofocus" in resend
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_a_resend_in_the_dialog_answers_every_time_with_a_toast_and_a_new_sent_line(client, make, store, zeynep,
                                                                                    sms):
    package, _code = ready(make, store, sms)
    seen = set()
    for _ in range(4):
        response = client.post(f"/packages/{package.id}/pickup-code", data={"in_dialog": "1"}, headers=HX)
        body = text(response)
        assert response.status_code == 200
        assert toast(response)["level"] == "success" and "new code was sent" in toast(response)["message"]
        # The dialog's form (no retarget, so it lands in the dialog) and the panel behind it, out of band.
        assert "HX-Retarget" not in response.headers
        assert 'id="command-form"' in body
        assert re.search(r'<section id="package-panel"[^>]*hx-swap-oob="outerHTML"', body)
        dialog_code = re.search(r'id="dialog-code-sent-at" data-code-id="(\d+)"', body).group(1)
        panel_code = re.search(r'id="code-sent-at" data-code-id="(\d+)"', body).group(1)
        assert dialog_code == panel_code and dialog_code not in seen
        seen.add(dialog_code)
    assert len(sms.outbox) == 5


def test_a_resend_on_the_page_answers_every_time_with_a_toast(client, make, store, zeynep, sms):
    package, _code = ready(make, store, sms)
    seen = set()
    for _ in range(3):
        response = client.post(f"/packages/{package.id}/pickup-code", headers=HX)
        assert response.status_code == 200 and toast(response)["level"] == "success"
        assert response.headers["HX-Retarget"] == "#package-panel"
        seen.add(re.search(r'id="code-sent-at" data-code-id="(\d+)"', text(response)).group(1))
    assert len(seen) == 3


@pytest.mark.parametrize("app_config", [{"OTP_RESEND_LIMIT": 1}])
def test_a_resend_past_the_limit_still_answers_in_the_dialog(client, make, store, zeynep, sms):
    package, _code = ready(make, store, sms)
    client.post(f"/packages/{package.id}/pickup-code", data={"in_dialog": "1"}, headers=HX)

    response = client.post(f"/packages/{package.id}/pickup-code", data={"in_dialog": "1"}, headers=HX)

    assert response.status_code == 429
    assert toast(response)["level"] == "error" and "Please wait" in toast(response)["message"]
    assert 'id="command-form"' in text(response)


def fail_codes(user, package, count: int, minutes_ago: float = 0) -> None:
    """Record wrong codes by a user, as verify_code does."""
    when = utcnow() - timedelta(minutes=minutes_ago)
    for _ in range(count):
        db.session.add(OtpAttempt(user_id=user.id, package_id=package.id, success=False, created_at=when))
    db.session.commit()


def test_the_user_limit_says_how_long_the_wait_is(client, make, store, zeynep, sms, app):
    package, code = ready(make, store, sms)
    limit, window = app.config["OTP_USER_FAILURE_LIMIT"], app.config["OTP_USER_FAILURE_WINDOW_MINUTES"]
    fail_codes(zeynep, package, 1, minutes_ago=window - 4.5)  # leaves the window in 4.5 minutes
    fail_codes(zeynep, package, limit - 1)

    response = client.post(f"/packages/{package.id}/commands/{DELIVER}", data={"otp": code}, headers=HX)

    assert response.status_code == 429
    assert "Try again in 5 minutes" in text(response)
    assert otp.user_limit_wait(db.session, zeynep.id) == 5
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_one_wrong_code_under_the_limit_is_no_wait(make, store, zeynep, sms, app):
    package, _code = ready(make, store, sms)
    fail_codes(zeynep, package, app.config["OTP_USER_FAILURE_LIMIT"] - 1)

    assert otp.user_limit_wait(db.session, zeynep.id) == 0


def test_a_manager_lifts_the_limit_with_an_audit_row(client, make, store, zeynep, sms, app, auth_actions):
    package, code = ready(make, store, sms)
    fail_codes(zeynep, package, app.config["OTP_USER_FAILURE_LIMIT"])
    auth_actions.logout()
    make.user("manager", role="brand_manager")
    auth_actions.login("manager")

    page = text(client.get(f"/packages/{package.id}"))
    assert 'id="code-limit"' in page and f'data-lift-user="{zeynep.id}"' in page

    response = client.post(f"/packages/{package.id}/code-limit/{zeynep.id}/lift",
                           data={"reason": "Customer waiting, codes typed by a new colleague"}, headers=HX)

    assert response.status_code == 200 and toast(response)["level"] == "success"
    assert 'id="code-limit"' not in text(response)
    assert otp.user_limit_wait(db.session, zeynep.id) == 0
    log = db.session.scalar(select(PackageLog).where(PackageLog.command == "lift-code-limit"))
    assert log.package_id == package.id and "zeynep" in log.note and "new colleague" in log.note
    # The wrong codes stay on record for the package.
    assert db.session.scalar(select(func.count()).select_from(OtpAttempt).where(
        OtpAttempt.package_id == package.id, OtpAttempt.success.is_(False))) == app.config["OTP_USER_FAILURE_LIMIT"]
    # Zeynep may now hand the package over.
    auth_actions.logout()
    auth_actions.login("zeynep")
    assert client.post(f"/packages/{package.id}/commands/{DELIVER}", data={"otp": code}, headers=HX).status_code == 200
    assert state_of(package) == State.DELIVERED


def test_staff_may_not_lift_the_limit(client, make, store, zeynep, sms, app):
    package, _code = ready(make, store, sms)
    fail_codes(zeynep, package, app.config["OTP_USER_FAILURE_LIMIT"])

    page = text(client.get(f"/packages/{package.id}"))

    assert 'id="code-limit"' not in page
    assert client.post(f"/packages/{package.id}/code-limit/{zeynep.id}/lift", headers=HX).status_code == 403
    assert otp.user_limit_wait(db.session, zeynep.id) > 0


def test_lifting_the_limit_needs_a_reason(client, make, store, zeynep, sms, app, auth_actions):
    package, _code = ready(make, store, sms)
    fail_codes(zeynep, package, app.config["OTP_USER_FAILURE_LIMIT"])
    auth_actions.logout()
    make.user("manager", role="brand_manager")
    auth_actions.login("manager")

    response = client.post(f"/packages/{package.id}/code-limit/{zeynep.id}/lift", data={"reason": " "}, headers=HX)

    assert toast(response)["level"] == "error"
    assert otp.user_limit_wait(db.session, zeynep.id) > 0
    assert db.session.scalar(select(PackageLog).where(PackageLog.command == "lift-code-limit")) is None


def test_the_handover_dialog_shows_the_name_the_items_and_the_tries(client, make, store, zeynep, sms):
    package, _code = ready(make, store, sms)
    db.session.execute(update(PickupCode).where(PickupCode.package_id == package.id).values(failed_attempts=2))
    db.session.commit()

    body = text(client.get(f"/packages/{package.id}/commands/{DELIVER}", headers=HX))

    assert re.search(rf'<span class="handover-name">{package.customer.full_name}</span>', body)
    for item in package.items:
        assert re.search(rf'<span class="handover-qty">{item.quantity} ×</span> <span>{item.name}</span>', body)
    assert body.count('class="otp-cell"') == 6
    assert "3 tries left." in body
    assert "handover-shelf" not in body  # no shelf data yet: nothing shown


def test_delivery_answers_with_the_delivered_screen(client, make, store, zeynep, sms):
    package, code = ready(make, store, sms)

    response = client.post(f"/packages/{package.id}/commands/{DELIVER}", data={"otp": code}, headers=HX)

    body = text(response)
    assert response.status_code == 200
    assert f"Delivered to {package.customer.full_name}" in body
    assert 'data-home="/packages"' in body
    assert json.loads(response.headers["HX-Trigger"])["close-modal"] is True


def test_delivery_without_htmx_goes_back_to_the_scan_box(client, make, store, zeynep, sms):
    package, code = ready(make, store, sms)

    response = client.post(f"/packages/{package.id}/commands/{DELIVER}", data={"otp": code})

    assert response.status_code == 302 and response.headers["Location"].endswith("/packages")
