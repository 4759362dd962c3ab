"""Manager override: handing a package over without the customer's code, after an ID check (issue 9).

Domain (through run_command), the web route, the REST API, and the abuse cases: a non-manager, a wrong
manager password (counted toward a limit), a missing reason, a package not ready, a store that switched it off.
"""
from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from portal.accounts import auth
from portal.api.resources.packages import OverrideInput
from portal.errors import CommandRejected, InvalidOtp, PermissionDenied, RateLimited, ValidationFailed
from portal.extensions import db
from portal.outbox.models import OutboxMessage
from portal.packages import commands, override
from portal.packages.models import Package, PackageLog
from portal.packages.states import State
from portal.webhooks import catalogue

HX = {"HX-Request": "true"}
DELIVER = "self-service-package-delivery"
PASSWORD = "correct-horse-1"


@pytest.fixture
def store(make):
    """The store the override happens in."""
    return make.store("IST-OVR", "Moda Store")


@pytest.fixture
def staff(make, store):
    """Store staff."""
    return make.user("zeynep", stores=[store])


@pytest.fixture
def manager(make):
    """A brand manager."""
    return make.user("mert", role="brand_manager")


def ready(make, store, sms) -> Package:
    """A click & collect package ready for pickup (the customer got a code)."""
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    return package


def state_of(package) -> int:
    """The package's state in the database."""
    db.session.expire_all()
    return db.session.get(Package, package.id).state


def params(**extra) -> dict:
    """Delivery parameters with an override."""
    return {"override": {"reason": "lost_sms", "note": "Showed a passport", "id_checked": True, **extra}}


def deliver(package, user, **extra):
    """Run the delivery command with an override as this user."""
    return commands.run_command(db.session, package.id, slug=DELIVER, params=params(**extra), user_id=user.id,
                                store_ids=None if user.sees_all_stores else user.store_ids)


def override_logs() -> list[PackageLog]:
    """Audit rows of refused override attempts."""
    return list(db.session.scalars(select(PackageLog).where(PackageLog.command == override.REFUSED_COMMAND)))


# -- domain ------------------------------------------------------------------------------------------------

def test_a_manager_hands_over_without_a_code_audited_with_an_event_and_an_sms(make, store, manager, sms):
    package = ready(make, store, sms)
    sent_before = len(sms.outbox)

    result = deliver(package, manager)

    assert result.to_state == State.DELIVERED and state_of(package) == State.DELIVERED
    log = db.session.scalar(select(PackageLog).where(PackageLog.package_id == package.id,
                                                     PackageLog.to_state == State.DELIVERED))
    assert log.user_id == manager.id and log.authorised_by_id == manager.id
    assert "Customer lost the SMS" in log.note and "Showed a passport" in log.note
    [event] = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.event_type == catalogue.PACKAGE_DELIVERED_WITH_OVERRIDE))
    assert event.package_id == package.id
    assert event.payload["payload"]["override"]["reason"] == "lost_sms"
    assert event.payload["payload"]["override"]["authorised_by"]["id"] == manager.id
    # The usual delivered event still fires.
    assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.event_type == catalogue.PACKAGE_DELIVERED))
    assert len(sms.outbox) == sent_before + 1
    assert package.order_number in sms.outbox[-1].body and "without the pickup code" in sms.outbox[-1].body


def test_staff_hand_over_with_a_managers_password_both_users_on_the_audit_row(make, store, staff, manager, sms):
    package = ready(make, store, sms)

    deliver(package, staff, manager_username="mert", manager_password=PASSWORD)

    log = db.session.scalar(select(PackageLog).where(PackageLog.to_state == State.DELIVERED))
    assert log.user_id == staff.id and log.authorised_by_id == manager.id
    [event] = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.event_type == catalogue.PACKAGE_DELIVERED_WITH_OVERRIDE))
    assert event.payload["payload"]["override"]["performed_by"]["id"] == staff.id


def test_the_wrong_code_path_is_untouched_an_override_needs_no_code(make, store, manager, sms):
    package = ready(make, store, sms)
    with pytest.raises((InvalidOtp, ValidationFailed)):
        commands.run_command(db.session, package.id, slug=DELIVER, params={"otp": "000000x"}, user_id=manager.id,
                             store_ids=None)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


# -- abuse -------------------------------------------------------------------------------------------------

def test_staff_without_a_manager_are_refused(make, store, staff, sms):
    package = ready(make, store, sms)
    with pytest.raises(PermissionDenied):
        deliver(package, staff)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_a_staff_members_password_does_not_authorise(make, store, staff, sms):
    make.user("ayse", stores=[store])
    package = ready(make, store, sms)
    with pytest.raises(PermissionDenied):
        deliver(package, staff, manager_username="ayse", manager_password=PASSWORD)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    assert len(override_logs()) == 1


def test_wrong_manager_passwords_count_toward_a_limit(make, store, staff, manager, sms, app):
    package = ready(make, store, sms)
    limit = app.config["OVERRIDE_MAX_FAILURES"]
    for _ in range(limit):
        with pytest.raises(ValidationFailed) as refused:
            deliver(package, staff, manager_username="mert", manager_password="wrong-password")
        assert refused.value.field == "override.manager_password"
    assert len(override_logs()) == limit
    # Past the limit even the right password waits.
    with pytest.raises(RateLimited):
        deliver(package, staff, manager_username="mert", manager_password=PASSWORD)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_the_managers_account_lock_counts_too(make, store, staff, manager, sms, app):
    app.config["OVERRIDE_MAX_FAILURES"] = 100
    package = ready(make, store, sms)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        with pytest.raises(ValidationFailed):
            deliver(package, staff, manager_username="mert", manager_password="wrong-password")
    # Locked now: even the right password is refused, with the answer a wrong one gets.
    with pytest.raises(ValidationFailed):
        deliver(package, staff, manager_username="mert", manager_password=PASSWORD)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


@pytest.mark.parametrize(("change", "field"), [
    ({"reason": ""}, "override.reason"),
    ({"reason": "because"}, "override.reason"),
    ({"reason": "other", "note": "  "}, "override.note"),
    ({"id_checked": False}, "override.id_checked"),
])
def test_the_reason_and_the_id_check_are_required(make, store, manager, sms, change, field):
    package = ready(make, store, sms)
    with pytest.raises(ValidationFailed) as refused:
        deliver(package, manager, **change)
    assert refused.value.field == field
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP


def test_only_ready_packages_can_be_overridden(make, store, manager, sms):
    package = make.package(store=store, state=State.PACKED)
    with pytest.raises((CommandRejected, ValidationFailed)):
        deliver(package, manager)
    assert state_of(package) == State.PACKED
    delivered = ready(make, store, sms)
    deliver(delivered, manager)
    with pytest.raises((CommandRejected, ValidationFailed)):
        deliver(delivered, manager)


def test_a_store_can_switch_the_override_off(make, store, manager, sms):
    package = ready(make, store, sms)
    override.set_store_allowed(db.session, store.id, False)
    with pytest.raises(CommandRejected):
        deliver(package, manager)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    assert not db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.event_type == catalogue.PACKAGE_DELIVERED_WITH_OVERRIDE))


def test_the_api_lists_the_domains_reasons():
    assert set(OverrideInput.model_json_schema()["properties"]["reason"]["enum"]) == set(override.REASONS)


def test_the_event_is_in_the_catalogue():
    assert catalogue.is_known(catalogue.PACKAGE_DELIVERED_WITH_OVERRIDE)


# -- API ---------------------------------------------------------------------------------------------------

def token_headers(user) -> dict:
    """Authorization header with a new API token of the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def api_deliver(client, package, user, **extra):
    """POST the delivery command with an override."""
    return client.post(f"/api/v1/oms/packages/{package.id}/command/", headers=token_headers(user),
                       json={"slug": DELIVER, "input_parameters": params(**extra)})


def test_api_a_manager_overrides(client, make, store, manager, sms):
    package = ready(make, store, sms)
    response = api_deliver(client, package, manager)
    assert response.status_code == 204, response.get_data(as_text=True)
    assert state_of(package) == State.DELIVERED


def test_api_staff_alone_are_refused_and_with_a_manager_succeed(client, make, store, staff, manager, sms):
    package = ready(make, store, sms)
    assert api_deliver(client, package, staff).status_code == 403
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    assert api_deliver(client, package, staff, manager_username="mert",
                       manager_password="nope-nope").status_code in (400, 422)
    assert api_deliver(client, package, staff, manager_username="mert",
                       manager_password=PASSWORD).status_code == 204
    assert state_of(package) == State.DELIVERED


def test_api_rejects_an_unknown_reason_by_name(client, make, store, manager, sms):
    package = ready(make, store, sms)
    response = api_deliver(client, package, manager, reason="felt-like-it")
    assert response.status_code == 400
    assert "reason" in response.get_data(as_text=True)


def test_api_store_switch(client, make, store, manager, staff, sms):
    url = f"/api/v1/oms/stock-locations/{store.id}/manager-override/"
    assert client.get(url, headers=token_headers(manager)).get_json()["manager_override_allowed"] is True
    assert client.put(url, headers=token_headers(staff), json={"manager_override_allowed": False}).status_code == 403
    response = client.put(url, headers=token_headers(manager), json={"manager_override_allowed": False})
    assert response.status_code == 200 and response.get_json()["manager_override_allowed"] is False
    package = ready(make, store, sms)
    assert api_deliver(client, package, manager).status_code in (400, 422)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
    assert client.get("/api/v1/oms/stock-locations/999999/manager-override/",
                      headers=token_headers(manager)).status_code == 404


def test_openapi_documents_the_override(client, make):
    document = client.get("/api/v1/openapi.json", headers=token_headers(make.user(role="admin"))).get_json()
    assert "/api/v1/oms/stock-locations/{store_id}/manager-override/" in json.dumps(document["paths"]) or any(
        "manager-override" in path for path in document["paths"])
    assert "OverrideInput" in json.dumps(document)
    assert re.search(r"manager_password", json.dumps(document))


# -- web ---------------------------------------------------------------------------------------------------

def form(**extra) -> dict:
    """The override fields of the handover dialog."""
    return {"override_reason": "phone_battery", "override_note": "", "override_id_checked": "on", **extra}


def test_web_the_dialog_offers_the_override_and_a_manager_hands_over(client, make, store, manager, sms,
                                                                     auth_actions):
    package = ready(make, store, sms)
    auth_actions.login("mert")
    dialog = client.get(f"/packages/{package.id}/commands/{DELIVER}", headers=HX).get_data(as_text=True)
    assert 'id="override"' in dialog and "Phone out of battery" in dialog
    assert 'name="manager_password"' not in dialog  # the manager authorises it themself

    response = client.post(f"/packages/{package.id}/override", data=form(), headers=HX)

    assert response.status_code == 200
    assert json.loads(response.headers["HX-Trigger"])["toast"]["level"] == "success"
    assert state_of(package) == State.DELIVERED


def test_web_staff_need_a_managers_login_and_a_wrong_one_answers_in_the_dialog(client, make, store, staff, manager,
                                                                              sms, auth_actions):
    package = ready(make, store, sms)
    auth_actions.login("zeynep")
    dialog = client.get(f"/packages/{package.id}/commands/{DELIVER}", headers=HX).get_data(as_text=True)
    assert 'name="manager_password"' in dialog

    refused = client.post(f"/packages/{package.id}/override", data=form(), headers=HX)
    assert refused.status_code == 422 and 'id="override-error"' in refused.get_data(as_text=True)
    wrong = client.post(f"/packages/{package.id}/override",
                        data=form(manager_username="mert", manager_password="not-it"), headers=HX)
    assert wrong.status_code == 422 and "Wrong manager username or password" in wrong.get_data(as_text=True)
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP

    done = client.post(f"/packages/{package.id}/override",
                       data=form(manager_username="mert", manager_password=PASSWORD), headers=HX)
    assert done.status_code == 200 and state_of(package) == State.DELIVERED


def test_web_a_store_that_switched_it_off_shows_no_override_and_refuses(client, make, store, manager, sms,
                                                                        auth_actions):
    package = ready(make, store, sms)
    override.set_store_allowed(db.session, store.id, False)
    auth_actions.login("mert")
    dialog = client.get(f"/packages/{package.id}/commands/{DELIVER}", headers=HX).get_data(as_text=True)
    assert 'id="override"' not in dialog
    response = client.post(f"/packages/{package.id}/override", data=form(), headers=HX)
    assert response.status_code == 422
    assert state_of(package) == State.READY_FOR_CUSTOMER_PICKUP
