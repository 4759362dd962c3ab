"""The store floor in the browser: the package list, a package's page, its commands and the handover modal."""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.outbox.models import OutboxMessage
from portal.packages import commands
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.settings import service as settings
from tests.floor import HX, text


def state_of(package) -> int:
    """The package's state in the database."""
    db.session.expire_all()
    return db.session.get(Package, package.id).state


def ready_for_pickup(make, store, sms) -> tuple[Package, str]:
    """A click & collect package made ready for pickup, and the code its customer got."""
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    code = re.search(r" is (\d+)\.", sms.outbox[-1].body).group(1)
    return package, code


def command_slugs(page: str, package) -> set[str]:
    """The commands a package page offers, by the slugs in its buttons' URLs."""
    return set(re.findall(rf"/packages/{package.id}/commands/([a-z0-9-]+)\"", page))


def test_the_list_is_a_full_page_on_a_visit_and_only_the_table_for_htmx(client, make, store, zeynep):
    package = make.package(store=store)

    page = client.get("/packages")
    fragment = client.get("/packages", headers=HX)

    assert page.status_code == fragment.status_code == 200
    assert "<html" in text(page) and 'id="package-table"' in text(page)
    assert "<html" not in text(fragment)
    assert 'id="package-table"' in text(fragment)
    assert 'id="package-filters"' not in text(fragment)
    assert package.number in text(page) and package.number in text(fragment)
    assert "HX-Request" in page.headers["Vary"] and "HX-Request" in fragment.headers["Vary"]


@pytest.mark.parametrize("header", ["HX-Boosted", "HX-History-Restore-Request"])
def test_a_boosted_or_history_restore_request_gets_the_whole_page(client, make, store, zeynep, header):
    response = client.get("/packages", headers={**HX, header: "true"})

    assert "<html" in text(response)
    assert 'id="package-filters"' in text(response)


def test_each_row_shows_what_staff_need_at_a_glance(client, make, store, zeynep):
    package = make.package(store=store, items=3)

    row = re.search(rf'<tr id="package-row-{package.id}">(.*?)</tr>', text(client.get("/packages?tab=all")), re.S).group(1)

    for shown in (package.number, package.order_number, package.customer.full_name, "Waiting", "In store", "Yes",
                  ">3<", "min"):
        assert shown in row


def test_the_list_filters_by_status_and_delivery_type(client, make, store, zeynep):
    waiting_cc = make.package(store=store, state=State.WAITING, click_collect=True)
    waiting_cargo = make.package(store=store, state=State.WAITING, click_collect=False)
    packed_cc = make.package(store=store, state=State.PACKED, click_collect=True)

    by_status = text(client.get("/packages?status=500", headers=HX))
    by_slug = text(client.get("/packages?status=packed", headers=HX))
    by_type = text(client.get("/packages?delivery_type=cargo", headers=HX))
    both = text(client.get("/packages?status=100&delivery_type=in_store", headers=HX))

    assert packed_cc.number in by_status and waiting_cc.number not in by_status
    assert by_slug.count('id="package-row-') == 1 and packed_cc.number in by_slug
    assert waiting_cargo.number in by_type and waiting_cc.number not in by_type and packed_cc.number not in by_type
    assert waiting_cc.number in both and waiting_cargo.number not in both and packed_cc.number not in both


def test_search_finds_a_package_by_its_number_or_its_order_number(client, make, store, zeynep):
    wanted, other = make.package(store=store), make.package(store=store)

    for term in (wanted.number, wanted.order_number, wanted.number.lower()):
        page = text(client.get(f"/packages?search={term}", headers=HX))
        assert wanted.number in page and other.number not in page
    assert "No packages match" in text(client.get("/packages?search=NOPE", headers=HX))


def test_the_filters_stay_in_the_page_and_in_the_refresh_url(client, make, store, zeynep):
    page = text(client.get("/packages?status=100&delivery_type=cargo"))

    assert re.search(r'<option value="100"\s+selected', page)
    assert re.search(r'<option value="cargo"\s+selected', page)
    refresh = re.search(r'<section id="package-table"[^>]*hx-get="([^"]+)"', page).group(1)
    assert "status=100" in refresh and "delivery_type=cargo" in refresh


def test_a_scan_and_enter_opens_the_only_matching_package(client, make, store, zeynep):
    package = make.package(store=store)

    response = client.get(f"/packages?search={package.number}&open=1")

    assert response.status_code == 302
    assert response.headers["Location"] == f"/packages/{package.id}"


def test_a_scan_of_a_package_ready_for_pickup_opens_the_handover(client, make, store, zeynep, sms):
    package, _code = ready_for_pickup(make, store, sms)

    response = client.get(f"/packages?search={package.order_number}&open=1")

    assert response.status_code == 302
    assert response.headers["Location"] == f"/packages/{package.id}?handover=1"
    page = text(client.get(response.headers["Location"]))
    assert f'data-open-modal="/packages/{package.id}/commands/self-service-package-delivery"' in page


def test_enter_in_the_htmx_search_form_sends_the_browser_to_the_package(client, make, store, zeynep):
    package = make.package(store=store)

    response = client.get(f"/packages?search={package.number}", headers={**HX, "HX-Trigger": "package-filters"})

    assert response.status_code == 204
    # A full page load, not HX-Location: the package page needs its own layout and opens the modal itself.
    assert response.headers["HX-Redirect"] == f"/packages/{package.id}"


def test_typing_in_the_search_box_only_filters_the_table(client, make, store, zeynep):
    package = make.package(store=store)

    response = client.get(f"/packages?search={package.number}", headers={**HX, "HX-Trigger": "search"})

    assert response.status_code == 200
    assert package.number in text(response)


def test_a_scan_that_matches_nothing_stays_on_the_list(client, make, store, zeynep):
    make.package(store=store)

    response = client.get("/packages?search=PK9999999&open=1")

    assert response.status_code == 200
    assert "Nothing matches “PK9999999”" in text(response)
    assert re.search(r'<input id="search"[^>]*value="PK9999999"[^>]*aria-invalid="true"', text(response))


@pytest.mark.parametrize("app_config", [{"PAGE_SIZE": 3}])
def test_pages_of_packages_link_to_older_and_newer_pages(client, make, store, zeynep):
    packages = [make.package(store=store) for _ in range(7)]
    newest_first = [p.number for p in reversed(packages)]

    def numbers(page):
        """Package numbers on a page, in order."""
        return re.findall(r'class="row-link">(PK\d+)<', page)

    first = text(client.get("/packages?delivery_type=in_store"))
    assert numbers(first) == newest_first[:3]
    assert "← Newer" not in first
    older = re.search(r'href="(/packages\?[^"]*after=\d+[^"]*)"', first).group(1).replace("&amp;", "&")
    assert "delivery_type=in_store" in older

    second = text(client.get(older, headers=HX))
    assert numbers(second) == newest_first[3:6]
    newer = re.search(r'href="(/packages\?[^"]*before=\d+[^"]*)"', second).group(1).replace("&amp;", "&")
    third = text(client.get(re.search(r'href="(/packages\?[^"]*after=\d+[^"]*)"', second).group(1)
                            .replace("&amp;", "&"), headers=HX))
    assert numbers(third) == newest_first[6:]
    assert "Older →" not in third
    assert numbers(text(client.get(newer, headers=HX))) == newest_first[:3]


@pytest.mark.parametrize("query,message", [
    ("status=bogus", "Unknown status"), ("delivery_type=drone", "Unknown delivery type"),
    ("after=abc", "after must be a number"),
])
def test_a_bad_filter_value_shows_a_message_not_an_error_page(client, make, store, zeynep, query, message):
    package = make.package(store=store)

    response = client.get(f"/packages?{query}", headers=HX)

    assert response.status_code == 200
    assert message in text(response)
    assert package.number in text(response)


def test_staff_cannot_filter_on_another_store(client, make, store, zeynep):
    other = make.store()
    theirs = make.package(store=other)

    page = text(client.get(f"/packages?stock_location={other.id}", headers=HX))

    assert "not one of yours" in page
    assert theirs.number not in page


def test_the_package_page_shows_items_customer_history_and_its_commands(client, make, store, zeynep):
    package = make.package(store=store, state=State.WAITING, items=2, phone="+905559998877")
    commands.run_command(db.session, package.id, slug="deallocate-package-reservations", user_id=zeynep.id,
                         store_ids=None)

    page = text(client.get(f"/packages/{package.id}"))

    for item in package.items:
        assert item.name in page and f"<code>{item.barcode}</code>" in page
    assert package.customer.full_name in page and "+90 555 999 88 77" in page
    history = re.search(r'<article id="package-history">(.*?)</article>', page, re.S).group(1)
    assert "Waiting" in history and "Preparing" in history
    assert "DeAllocate Package Reservations" in history and "zeynep" in history
    available = commands.available_transitions(db.session, db.session.get(Package, package.id), "INSTORE")
    assert command_slugs(page, package) == {t.slug for t in available}
    assert "block-the-package-for-action-from-preparing" not in page  # OMS WEB only


def test_buttons_carry_the_vendors_command_names(client, make, store, zeynep):
    packed = make.package(store=store, state=State.PACKED)

    page = text(client.get(f"/packages/{packed.id}"))

    assert command_slugs(page, packed) == {"ready-for-customer-pickup"}
    # Plain words first, the vendor's command name as the secondary label.
    assert re.search(r'data-command="READY_FOR_PICKUP"\s+id="primary-action"><span class="command-label">Ready for pickup'
                     r'</span><small class="command-vendor">Ready For Customer Pickup</small></button>', page)


def test_an_admin_sees_the_oms_web_commands(client, make, store, auth_actions):
    make.user("admin", role="admin")
    auth_actions.login("admin")
    package = make.package(store=store, state=State.PACKED)

    page = text(client.get(f"/packages/{package.id}"))

    assert command_slugs(page, package) == {"ready-for-customer-pickup", "block-the-package-for-action-from-packed"}


def test_a_package_page_for_htmx_is_only_the_panel(client, make, store, zeynep):
    package = make.package(store=store)

    response = client.get(f"/packages/{package.id}", headers=HX)

    assert 'id="package-panel"' in text(response) and "<html" not in text(response)
    assert "HX-Request" in response.headers["Vary"]


def test_another_stores_package_is_not_found_anywhere(client, make, store, zeynep):
    theirs = make.package(store=make.store(), state=State.WAITING)
    base = f"/packages/{theirs.id}"

    assert client.get(base).status_code == 404
    assert client.get(f"{base}/commands/complete-packaging-from-waiting").status_code == 404
    assert client.post(f"{base}/commands/deallocate-package-reservations").status_code == 404
    assert client.post(f"{base}/commands/deallocate-package-reservations", headers=HX).status_code == 404
    assert client.post(f"{base}/pickup-code").status_code == 404
    assert state_of(theirs) == State.WAITING
    assert db.session.scalar(select(func.count()).select_from(PackageLog)) == 0


def test_an_unknown_package_or_command_is_not_found(client, make, store, zeynep):
    package = make.package(store=store)

    assert client.get("/packages/999999").status_code == 404
    assert client.get(f"/packages/{package.id}/commands/no-such-command").status_code == 404


def test_a_one_tap_command_via_htmx_answers_with_the_panel_and_a_toast(client, make, store, zeynep):
    package = make.package(store=store, state=State.WAITING)

    response = client.post(f"/packages/{package.id}/commands/complete-packaging-without-shipment",
                           data={"version": 1}, headers=HX)

    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#package-panel"
    events = json.loads(response.headers["HX-Trigger"])
    assert events["toast"]["level"] == "success"
    assert package.number in events["toast"]["message"]
    assert events["packages-changed"] is True
    body = text(response)
    assert 'id="package-panel"' in body
    assert "Packed All Items" in body and "<html" not in body
    assert state_of(package) == State.PACKED
    row = db.session.scalar(select(PackageLog))
    assert (row.user_id, row.command) == (zeynep.id, "complete-packaging-without-shipment")


def test_a_one_tap_command_without_javascript_redirects_back_with_a_message(client, make, store, zeynep):
    package = make.package(store=store, state=State.WAITING)

    response = client.post(f"/packages/{package.id}/commands/deallocate-package-reservations",
                           data={"version": 1})

    assert response.status_code == 302
    assert response.headers["Location"] == f"/packages/{package.id}"
    assert state_of(package) == State.PREPARING
    assert "done" in text(client.get(response.headers["Location"]))


def test_a_command_posted_with_an_old_version_is_a_conflict(client, make, store, zeynep):
    package = make.package(store=store, state=State.WAITING)
    commands.run_command(db.session, package.id, slug="deallocate-package-reservations", user_id=None,
                         store_ids=None)

    response = client.post(f"/packages/{package.id}/commands/refuse-with-denial-reason-from-preparing",
                           data={"version": 1, "denial_reason": 1}, headers=HX)
    plain = client.post(f"/packages/{package.id}/commands/refuse-with-denial-reason-from-preparing",
                        data={"version": 1, "denial_reason": 1})

    assert response.status_code == 409
    assert response.headers["HX-Retarget"] == "#package-panel"
    assert "Someone else changed this package" in text(response)
    assert json.loads(response.headers["HX-Trigger"])["toast"]["level"] == "error"
    assert plain.status_code == 409
    assert state_of(package) == State.PREPARING
    assert db.session.scalar(select(func.count()).select_from(PackageLog)) == 1


def test_a_command_from_a_state_the_package_left_shows_why_it_was_refused(client, make, store, zeynep):
    package = make.package(store=store, state=State.PACKED)

    response = client.post(f"/packages/{package.id}/commands/deallocate-package-reservations", headers=HX)

    assert response.status_code == 422
    assert "runs on Waiting packages" in text(response)
    assert state_of(package) == State.PACKED


def test_complete_packaging_opens_the_packing_screen_and_a_posted_form_still_checks_barcodes(
        client, make, store, zeynep):
    package = make.package(store=store, state=State.WAITING, items=2, click_collect=False)
    first, second = package.items
    url = f"/packages/{package.id}/commands/complete-packaging-from-waiting"

    form = client.get(url, headers=HX)
    assert form.status_code == 204 and form.headers["HX-Redirect"] == f"/packages/{package.id}/pack"
    assert client.get(url).headers["Location"].endswith(f"/packages/{package.id}/pack")
    wrong = client.post(url, data={f"barcode_{first.order_item}": first.barcode,
                                   f"barcode_{second.order_item}": "0000"}, headers=HX)
    assert wrong.status_code == 422
    assert "Barcode does not match Item 2" in text(wrong)
    assert state_of(package) == State.WAITING

    right = client.post(url, data={f"barcode_{first.order_item}": first.barcode,
                                   f"barcode_{second.order_item}": second.barcode}, headers=HX)
    assert right.status_code == 200
    assert state_of(package) == State.PACKED


def test_the_handover_modal_asks_for_a_numeric_one_time_code(client, make, store, zeynep, sms):
    package, _code = ready_for_pickup(make, store, sms)

    modal = text(client.get(f"/packages/{package.id}/commands/self-service-package-delivery", headers=HX))

    assert 'id="command-form"' in modal and "<html" not in modal
    field = re.search(r'<input id="otp"[^>]*>', modal, re.S).group(0)
    assert 'inputmode="numeric"' in field and 'autocomplete="one-time-code"' in field
    assert "Self Service Package Delivery" in modal


def test_a_wrong_code_in_the_modal_shows_the_error_there_and_keeps_the_package(client, make, store, zeynep, sms):
    package, code = ready_for_pickup(make, store, sms)
    wrong = f"{(int(code) + 1) % 1000000:06d}"

    response = client.post(f"/packages/{package.id}/commands/self-service-package-delivery",
                           data={"otp": wrong}, headers=HX)

    assert response.status_code == 422
    body = text(response)
    assert 'id="command-form"' in body and 'id="otp"' in body and "<html" not in body
    assert "Wrong code. 4 tries left." in body
    assert 'aria-invalid="true"' in body
    assert "HX-Retarget" not in response.headers  # the error stays in the modal
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_the_right_code_delivers_and_closes_the_modal(client, make, store, zeynep, sms):
    package, code = ready_for_pickup(make, store, sms)

    response = client.post(f"/packages/{package.id}/commands/self-service-package-delivery",
                           data={"otp": code}, headers=HX)

    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#package-panel"
    events = json.loads(response.headers["HX-Trigger"])
    assert events["close-modal"] is True
    assert events["toast"] == {"message": f"Package {package.number} delivered.", "level": "success"}
    assert "Delivered" in text(response)
    assert state_of(package) == State.DELIVERED
    row = db.session.scalar(select(PackageLog).where(PackageLog.to_state == State.DELIVERED))
    assert row.user_id == zeynep.id


def test_a_locked_code_is_explained_and_resend_brings_a_working_code(client, make, store, zeynep, sms):
    package, code = ready_for_pickup(make, store, sms)
    wrong = f"{(int(code) + 1) % 1000000:06d}"
    url = f"/packages/{package.id}/commands/self-service-package-delivery"
    for _ in range(5):
        client.post(url, data={"otp": wrong}, headers=HX)

    locked = client.post(url, data={"otp": code}, headers=HX)
    assert locked.status_code == 422 and "locked" in text(locked)
    assert "locked" in text(client.get(f"/packages/{package.id}"))

    resent = client.post(f"/packages/{package.id}/pickup-code", headers=HX)
    assert resent.status_code == 200
    assert "new code" in json.loads(resent.headers["HX-Trigger"])["toast"]["message"]
    assert len(sms.outbox) == 2
    new_code = re.search(r" is (\d+)\.", sms.outbox[-1].body).group(1)
    assert client.post(url, data={"otp": new_code}, headers=HX).status_code == 200
    assert state_of(package) == State.DELIVERED


def test_too_many_resends_answer_429_with_a_message(client, make, store, zeynep, sms):
    package, _code = ready_for_pickup(make, store, sms)
    for _ in range(3):
        assert client.post(f"/packages/{package.id}/pickup-code", headers=HX).status_code == 200

    response = client.post(f"/packages/{package.id}/pickup-code", headers=HX)

    assert response.status_code == 429
    assert "Please wait" in json.loads(response.headers["HX-Trigger"])["toast"]["message"]
    assert len(sms.outbox) == 4


def test_with_otp_off_delivery_is_one_tap(client, make, store, zeynep, sms):
    settings.set_value(db.session, settings.IS_OTP_ENABLED, False, user_id=None)
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)

    page = text(client.get(f"/packages/{package.id}"))
    assert re.search(r'data-command="SELF_SERVICE_PACKAGE_DELIVERY_COMMAND"\s+id="primary-action"><span class="command-label">'
                     r'Hand over</span><small class="command-vendor">Self Service Package Delivery</small></button>', page)
    assert "Resend code" not in page

    response = client.post(f"/packages/{package.id}/commands/self-service-package-delivery", headers=HX)
    assert response.status_code == 200
    assert state_of(package) == State.DELIVERED


def test_a_failed_sms_is_shown_with_a_retry_that_sends_it(client, make, store, zeynep, sms):
    package = make.package(store=store, state=State.PACKED)
    sms.fail_with = "Twilio is down"

    response = client.post(f"/packages/{package.id}/commands/ready-for-customer-pickup", data={"version": 1},
                           headers=HX)

    assert response.status_code == 200
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    assert "SMS not sent" in text(response)
    page = text(client.get(f"/packages/{package.id}"))
    assert "SMS not sent" in page
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "sms"))
    retry_url = f"/packages/{package.id}/sms/{message.id}/retry"
    assert f'hx-post="{retry_url}"' in page and "Retry SMS" in page

    still_down = client.post(retry_url, headers=HX)
    assert "SMS not sent" in json.loads(still_down.headers["HX-Trigger"])["toast"]["message"]
    assert sms.outbox == []

    sms.fail_with = None
    retried = client.post(retry_url, headers=HX)

    assert retried.status_code == 200
    assert json.loads(retried.headers["HX-Trigger"])["toast"] == {"message": "SMS sent.", "level": "success"}
    assert "SMS not sent" not in text(retried)
    assert len(sms.outbox) == 1 and package.order_number in sms.outbox[0].body
    db.session.expire_all()
    sent = db.session.get(OutboxMessage, message.id)
    assert (sent.status, sent.attempts, sent.body_encrypted) == (OutboxMessage.SENT, 3, None)


def test_retrying_an_sms_of_another_package_is_not_found(client, make, store, zeynep, sms):
    sms.fail_with = "down"
    first = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, first.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    other = make.package(store=store)
    message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "sms"))

    assert client.post(f"/packages/{other.id}/sms/{message.id}/retry").status_code == 404
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).attempts == 1


def test_staff_cannot_run_a_command_only_the_back_office_sees(client, make, store, zeynep):
    package = make.package(store=store, state=State.WAITING)

    response = client.post(f"/packages/{package.id}/commands/block-the-package-for-action-from-waiting",
                           data={"reason": "mine now"}, headers=HX)

    assert response.status_code == 404
    assert client.get(f"/packages/{package.id}/commands/block-the-package-for-action-from-waiting").status_code == 404
    assert state_of(package) == State.WAITING


@pytest.mark.parametrize("app_config", [{"OTP_USER_FAILURE_LIMIT": 2}])
def test_a_clerk_guessing_codes_is_stopped_with_429_in_the_modal(client, make, store, zeynep, sms):
    packages = [ready_for_pickup(make, store, sms) for _ in range(3)]
    for package, code in packages[:2]:
        wrong = f"{(int(code) + 1) % 1000000:06d}"
        client.post(f"/packages/{package.id}/commands/self-service-package-delivery", data={"otp": wrong},
                    headers=HX)

    package, code = packages[2]
    response = client.post(f"/packages/{package.id}/commands/self-service-package-delivery", data={"otp": code},
                           headers=HX)

    assert response.status_code == 429
    assert "Too many wrong codes" in text(response) and 'id="otp"' in text(response)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_a_resend_whose_sms_fails_says_so(client, make, store, zeynep, sms):
    package, _code = ready_for_pickup(make, store, sms)
    sms.fail_with = "down"

    response = client.post(f"/packages/{package.id}/pickup-code", headers=HX)

    assert response.status_code == 200
    toast = json.loads(response.headers["HX-Trigger"])["toast"]
    assert toast["level"] == "error" and "SMS not sent" in toast["message"]
    assert "Retry SMS" in text(response)


def test_the_history_names_who_did_each_step_and_their_stores_still_load_when_read(client, make, store, zeynep):
    from portal.packages import queries

    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=zeynep.id,
                         store_ids=[store.id])
    db.session.expire_all()
    history = queries.package_history(db.session, package.id)
    assert history[0].user.username == "zeynep"
    # The stores are not loaded with the history, but reading them still gives the user's own (not an empty list).
    assert history[0].user.store_ids == [store.id]
    page = text(client.get(f"/packages/{package.id}"))
    assert "zeynep" in page.split("History", 1)[-1]
