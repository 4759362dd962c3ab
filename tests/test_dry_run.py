"""Dry run of a command: the preview says what would happen, and nothing at all is written."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from portal import crypto
from portal.accounts import auth
from portal.errors import CommandRejected, NotFound, ValidationFailed
from portal.extensions import db
from portal.otp import service as otp
from portal.otp.models import OtpAttempt, PickupCode
from portal.outbox.models import OutboxMessage
from portal.packages import commands, dry_run
from portal.packages.models import Package, PackageLog, Transition
from portal.packages.states import State
from portal.settings import service as settings
from portal.stores.models import StockLocation
from portal.webhooks.models import WebhookSubscription

COUNTED = (Package, PackageLog, OutboxMessage, PickupCode, OtpAttempt)


def snapshot() -> dict:
    """Row counts of every table a command writes, the packages' states and versions, and the quotas."""
    db.session.rollback()
    counts = {model.__name__: db.session.scalar(select(func.count()).select_from(model)) for model in COUNTED}
    states = tuple(db.session.execute(select(Package.id, Package.state, Package.version).order_by(Package.id)))
    quotas = tuple(db.session.execute(select(StockLocation.id, StockLocation.quota).order_by(StockLocation.id)))
    codes = tuple(db.session.execute(select(PickupCode.id, PickupCode.status, PickupCode.failed_attempts)))
    db.session.rollback()
    return {"counts": counts, "states": states, "quotas": quotas, "codes": codes}


def preview(package, slug, params=None, user=None, **kwargs) -> dry_run.CommandPreview:
    """Dry-run a command by slug; checks the session was left with no transaction of its own."""
    result = dry_run.preview_command(db.session, package.id, slug=slug, params=params or {},
                                     user_id=user.id if user else None, store_ids=None, **kwargs)
    assert not db.session().in_transaction() or not db.session().new
    return result


def subscribe(event_type: str, url: str) -> WebhookSubscription:
    """An active webhook subscription."""
    row = WebhookSubscription(event_type=event_type, target_url=url, secret_encrypted=crypto.encrypt("s" * 32))
    db.session.add(row)
    db.session.commit()
    return row


def ready_package(make, store=None) -> Package:
    """A click & collect package made ready for pickup for real (so it has a live code)."""
    package = make.package(store=store, state=State.PACKED)
    commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None, store_ids=None)
    return package


def test_ready_for_pickup_preview_shows_state_events_webhooks_masked_sms_and_audit_and_writes_nothing(make, sms):
    clerk = make.user("clerk")
    package = make.package(state=State.PACKED)
    everything = subscribe("*", "https://hooks.example.com/all")
    ready = subscribe("package.ready_for_customer_pickup", "https://hooks.example.com/ready")
    subscribe("package.created", "https://hooks.example.com/created")
    before, texts = snapshot(), len(sms.outbox)

    result = preview(package, "ready-for-customer-pickup", user=clerk)

    assert (result.from_state, result.to_state) == (State.PACKED, State.READY_FOR_CUSTOMER_PICKUP)
    assert result.pickup_code_issued
    [text] = result.sms
    assert text.to == "+905551112233" and text.purpose == "pickup_code"
    assert package.order_number in text.body
    assert not re.search(r"\d{6}", text.body.replace(package.order_number, "")), text.body
    assert dry_run.MASK * 6 in text.body
    by_type = {e.event_type: e for e in result.events}
    assert set(by_type) == {"package.status.transitioned", "package.ready_for_customer_pickup"}
    assert [w.subscription_id for w in by_type["package.ready_for_customer_pickup"].webhooks] == [everything.id, ready.id]
    assert [w.target_url for w in by_type["package.status.transitioned"].webhooks] == ["https://hooks.example.com/all"]
    assert result.webhook_count == 3
    assert (result.audit.from_state, result.audit.to_state, result.audit.command, result.audit.user_id) == (
        State.PACKED, State.READY_FOR_CUSTOMER_PICKUP, "ready-for-customer-pickup", clerk.id)
    assert snapshot() == before
    assert len(sms.outbox) == texts


def test_extension_mode_preview_masks_the_code_the_event_would_carry(make, sms):
    admin = make.user("boss", role="admin")
    settings.set_value(db.session, settings.PICKUP_CODE_DELIVERY, settings.EXTENSION_APP, user_id=admin.id)
    db.session.commit()
    subscribe("package.ready_for_customer_pickup", "https://ext.example.com/hook")
    package = make.package(state=State.PACKED)
    before = snapshot()

    result = preview(package, "ready-for-customer-pickup")

    assert result.sms == []
    event = next(e for e in result.events if e.event_type == "package.ready_for_customer_pickup")
    assert event.payload["pickup_code"] == dry_run.MASK * 6
    assert snapshot() == before


def test_delivery_preview_checks_only_the_codes_shape_and_spends_no_try(make, sms):
    package = ready_package(make)
    before = snapshot()

    result = preview(package, "self-service-package-delivery", {"otp": "000000"})

    assert (result.from_state, result.to_state) == (State.READY_FOR_CUSTOMER_PICKUP, State.DELIVERED)
    assert result.quota_change == 0
    assert snapshot() == before  # the code is still active, no attempt was counted
    with pytest.raises(ValidationFailed) as missing:
        preview(package, "self-service-package-delivery", {})
    assert missing.value.field == "otp"
    with pytest.raises(ValidationFailed):
        preview(package, "self-service-package-delivery", {"otp": "12"})
    assert snapshot() == before
    assert db.session.scalar(select(PickupCode.status).where(PickupCode.package_id == package.id)) == PickupCode.ACTIVE


def test_packing_preview_shows_the_quota_coming_free_and_the_audit_note(make):
    store = make.store()
    package = make.package(store=store, state=State.WAITING)
    db.session.execute(StockLocation.__table__.update().values(quota=3))
    db.session.commit()
    before = snapshot()
    params = {"barcodes": [{"order_item": i.order_item, "barcode": i.barcode} for i in package.items],
              "ticked_by_hand": {}}

    result = preview(package, "complete-packaging-from-waiting", params)

    assert (result.to_state, result.quota_change, result.quota_before, result.quota_after) == (State.PACKED, -1, 3, 2)
    assert result.audit.note.startswith("Scanned:")
    assert snapshot() == before


def test_an_invalid_command_raises_what_the_real_run_raises_and_writes_nothing(make):
    other_store = make.store()
    package = make.package(state=State.WAITING)
    before = snapshot()
    wrong = [{"order_item": i.order_item, "barcode": "0"} for i in package.items]
    cases = [
        (ValidationFailed, dict(slug="complete-packaging-from-waiting", params={"barcodes": wrong})),
        (CommandRejected, dict(slug="self-service-package-delivery")),
        (ValidationFailed, dict(slug="no-such-command")),
    ]
    for error, kwargs in cases:
        with pytest.raises(error) as dry:
            preview(package, **kwargs)
        with pytest.raises(error) as real:
            commands.run_command(db.session, package.id, user_id=None, store_ids=None, **kwargs)
        assert str(dry.value) == str(real.value)
    with pytest.raises(NotFound):
        dry_run.preview_command(db.session, package.id, slug="cancel-package", user_id=None,
                                store_ids=[other_store.id])
    assert snapshot() == before


def test_every_vendor_command_previews_on_a_package_in_its_source_state_without_a_write(make, sms):
    for transition in db.session.scalars(select(Transition).where(Transition.is_active.is_(True))).all():
        click_collect = transition.command_code != "SHIP_PACKAGE"
        package = make.package(state=transition.source_state, click_collect=click_collect)
        if transition.command_code == "UNBLOCK_PACKAGE_FOR_ACTION":
            package.state_before_block = State.WAITING
            db.session.commit()
        if transition.command_code == "SELF_SERVICE_PACKAGE_DELIVERY_COMMAND":
            otp.issue_code(db.session, package.id, None)
            db.session.commit()
        before = snapshot()
        params = dry_run.sample_params(db.session, package, transition)
        result = preview(package, transition.slug, params)
        expected = transition.destination_state if transition.destination_state is not None else State.WAITING
        assert result.to_state == expected, transition.slug
        assert any(e.event_type == "package.status.transitioned" for e in result.events)
        assert snapshot() == before, transition.slug


def test_an_unsaved_edited_command_previews_on_the_newest_package_in_its_source_state(make):
    make.package(state=State.WAITING)
    newest = make.package(state=State.WAITING)
    edited = Transition(slug="edited", name="Edited", command_code="CANCEL_PACKAGE", source_state=State.WAITING,
                        destination_state=State.CANCELLED, visibility=["web"], is_active=True, position=1)
    before = snapshot()

    sample = dry_run.sample_package_id(db.session, State.WAITING, None)
    result = dry_run.preview_command(db.session, sample, transition=edited, params={"reason": "test"},
                                     user_id=None, store_ids=None)

    assert sample == newest.id
    assert (result.to_state, result.audit.note, result.transition_id) == (State.CANCELLED, "test", None)
    assert snapshot() == before
    assert db.session.scalar(select(func.count()).select_from(Transition).where(Transition.slug == "edited")) == 0


def test_a_commit_inside_a_dry_run_is_refused_and_the_listener_is_removed_after(make, monkeypatch):
    package = make.package(state=State.WAITING)
    real_run = commands.BlockPackage.run

    def committing(self, ctx):
        """A handler that (wrongly) commits."""
        real_run(self, ctx)
        ctx.session.commit()

    monkeypatch.setattr(commands.BlockPackage, "run", committing)
    before = snapshot()
    with pytest.raises(RuntimeError, match="never commits"):
        preview(package, "block-the-package-for-action-from-waiting")
    assert snapshot() == before
    db.session.add(PackageLog(package_id=package.id, from_state=1, to_state=1, command="x", note=""))
    db.session.commit()  # the guard is gone once the dry run is over


def test_the_real_path_still_runs_after_a_preview(make, sms):
    package = make.package(state=State.PACKED)
    preview(package, "ready-for-customer-pickup")
    result = commands.run_command(db.session, package.id, slug="ready-for-customer-pickup", user_id=None,
                                  store_ids=None)
    assert result.to_state == State.READY_FOR_CUSTOMER_PICKUP
    assert len(sms.outbox) == 1
    assert db.session.scalar(select(func.count()).select_from(PickupCode)) == 1


def token(user) -> dict:
    """An API token header for the user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def preview_url(package) -> str:
    """The dry-run endpoint of a package."""
    return f"/api/v1/oms/packages/{package.id}/command/preview/"


def test_api_preview_answers_the_preview_and_writes_nothing(client, make, sms):
    store = make.store()
    staff = make.user("kadikoy", stores=[store])
    headers = token(staff)
    subscribe("*", "https://hooks.example.com/all")
    package = make.package(store=store, state=State.PACKED)
    before = snapshot()

    answer = client.post(preview_url(package), headers=headers,
                         json={"slug": "ready-for-customer-pickup", "input_parameters": {"package": package.id}})

    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["from_status"]["value"] == "packed"
    assert body["to_status"]["value"] == "ready_for_customer_pickup"
    assert body["pickup_code_issued"] is True
    assert [e["event_type"] for e in body["events"]] == ["package.ready_for_customer_pickup",
                                                        "package.status.transitioned"]
    assert all(e["webhooks"][0]["target_url"] == "https://hooks.example.com/all" for e in body["events"])
    assert dry_run.MASK * 6 in body["sms"][0]["body"]
    assert body["audit"]["user"] == staff.id and body["audit"]["command"] == "ready-for-customer-pickup"
    assert snapshot() == before
    assert sms.outbox == []


def test_api_preview_answers_the_same_errors_as_the_command(client, make):
    store = make.store()
    staff = make.user("kadikoy", stores=[store])
    headers = token(staff)
    package = make.package(store=store, state=State.WAITING)
    elsewhere = make.package(state=State.WAITING)
    before = snapshot()
    bodies = [
        {"slug": "complete-packaging-from-waiting",
         "input_parameters": {"barcodes": [{"order_item": package.items[0].order_item, "barcode": "x"}]}},
        {"slug": "self-service-package-delivery"},
        {"slug": "no-such-command"},
        {"transition": "x"},
        {"slug": "ready-for-customer-pickup", "input_parameters": {"package": package.id + 1}},
    ]
    for body in bodies:
        dry = client.post(preview_url(package), headers=headers, json=body)
        real = client.post(f"/api/v1/oms/packages/{package.id}/command/", headers=headers, json=body)
        assert dry.status_code == real.status_code == 400, (body, dry.get_json())
        assert dry.get_json() == real.get_json()
    hidden = client.post(preview_url(elsewhere), headers=headers, json={"slug": "cancel-package-from-out-of-stock"})
    assert hidden.status_code == 404
    assert snapshot() == before


def test_api_preview_of_a_delivery_spends_no_try(client, make, sms):
    store = make.store()
    staff = make.user("kadikoy", stores=[store])
    package = ready_package(make, store)
    before = snapshot()
    for _ in range(8):
        answer = client.post(preview_url(package), headers=token(staff),
                             json={"slug": "self-service-package-delivery", "input_parameters": {"otp": "123456"}})
        assert answer.status_code == 200
        assert answer.get_json()["to_status"]["value"] == "delivered"
    assert snapshot() == before


def test_the_package_page_offers_a_preview_of_each_command_to_managers_and_it_writes_nothing(
        client, make, auth_actions, sms):
    store = make.store()
    make.user("boss", role="brand_manager", stores=[store])
    subscribe("*", "https://hooks.example.com/all")
    package = make.package(store=store, state=State.PACKED)
    auth_actions.login("boss")
    page = client.get(f"/packages/{package.id}").get_data(as_text=True)
    assert 'data-preview="ready-for-customer-pickup"' in page
    before = snapshot()

    answer = client.get(f"/packages/{package.id}/preview/ready-for-customer-pickup", headers={"HX-Request": "true"})

    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert "<html" not in html and 'id="dry-run"' in html
    assert "package.ready_for_customer_pickup" in html and "https://hooks.example.com/all" in html
    assert dry_run.MASK * 6 in html
    assert "Nothing was done." in html
    assert snapshot() == before and sms.outbox == []


def test_a_preview_of_a_refused_command_says_why_and_staff_get_no_preview(client, make, auth_actions):
    store = make.store()
    make.user("boss", role="admin")
    make.user("clerk", stores=[store])
    package = make.package(store=store, state=State.WAITING)
    auth_actions.login("clerk")
    assert 'data-preview=' not in client.get(f"/packages/{package.id}").get_data(as_text=True)
    assert client.get(f"/packages/{package.id}/preview/cancel-package-from-out-of-stock").status_code == 403
    auth_actions.logout()
    auth_actions.login("boss")
    before = snapshot()

    answer = client.get(f"/packages/{package.id}/preview/ship-the-package")

    assert answer.status_code == 200
    assert 'id="dry-run-error"' in answer.get_data(as_text=True)
    assert snapshot() == before


def edited_form(**overrides) -> dict:
    """The transitions editor's form for a command from Packed to Ready for Customer Pickup."""
    data = {"form": "edit-transition", "name": "Ready (edited)", "slug": "ready-for-customer-pickup",
            "command_code": "READY_FOR_PICKUP", "source_state": str(int(State.PACKED)),
            "destination_state": str(int(State.READY_FOR_CUSTOMER_PICKUP)), "visibility": ["OMS_WEB"],
            "configuration": "", "is_active": "on"}
    data.update(overrides)
    return data


def test_setup_step_13_previews_an_edited_command_on_the_newest_package_in_its_source_state(
        client, make, auth_actions, sms):
    make.user("ayse", role="admin")
    auth_actions.login("ayse")
    ready = db.session.scalar(select(Transition).where(Transition.slug == "ready-for-customer-pickup"))
    make.package(state=State.PACKED)
    newest = make.package(state=State.PACKED)
    page = client.get(f"/setup/package-commands/{ready.id}/edit").get_data(as_text=True)
    assert f"/setup/package-commands/{ready.id}/preview" in page
    before = snapshot()

    answer = client.post(f"/setup/package-commands/{ready.id}/preview", data=edited_form(),
                         headers={"HX-Request": "true"})

    assert answer.status_code == 200
    html = answer.get_data(as_text=True)
    assert newest.number in html and 'id="dry-run-state"' in html
    assert dry_run.MASK * 6 in html
    assert snapshot() == before and sms.outbox == []
    db.session.expire_all()
    assert db.session.get(Transition, ready.id).name == "Ready For Customer Pickup"  # the edit was not saved

    refused = client.post(f"/setup/package-commands/{ready.id}/preview", headers={"HX-Request": "true"},
                          data=edited_form(command_code="SHIP_PACKAGE", destination_state=str(int(State.SHIPPED))))
    assert refused.status_code == 200
    assert 'id="dry-run-error"' in refused.get_data(as_text=True) and newest.number in refused.get_data(as_text=True)

    invalid = client.post(f"/setup/package-commands/{ready.id}/preview", data=edited_form(command_code="NOPE"),
                          headers={"HX-Request": "true"})
    assert invalid.status_code == 422
    assert 'id="transition-preview-error"' in invalid.get_data(as_text=True)

    nobody = client.post("/setup/package-commands/preview", headers={"HX-Request": "true"}, data=edited_form(
        form="new-transition", slug="deliver-blocked", command_code="CANCEL_PACKAGE",
        source_state=str(int(State.BLOCKED)), destination_state=str(int(State.CANCELLED))))
    assert nobody.status_code == 200
    assert 'id="transition-preview-none"' in nobody.get_data(as_text=True)
    assert snapshot() == before


def test_the_package_pages_preview_of_packing_assumes_every_item_scanned_and_shows_the_quota(
        client, make, auth_actions):
    store = make.store()
    make.user("boss", role="brand_manager", stores=[store])
    package = make.package(store=store, state=State.WAITING)
    db.session.execute(StockLocation.__table__.update().values(quota=5))
    db.session.commit()
    auth_actions.login("boss")
    before = snapshot()

    html = client.get(f"/packages/{package.id}/preview/complete-packaging-from-waiting").get_data(as_text=True)

    assert "every item&#39;s barcode is scanned" in html or "every item's barcode is scanned" in html
    assert "5 → 4 (-1)" in html
    assert snapshot() == before
