"""Setup step 13: the transitions editor, its validation (down to stuck states) and the server-rendered flowchart."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from flask import render_template
from sqlalchemy import func, select

from portal.errors import ValidationFailed
from portal.extensions import db
from portal.packages import flow_editor, flowchart
from portal.packages.flow import VENDOR_FLOW_V1
from portal.packages.models import Transition
from portal.packages.states import STATES, State
from portal.setup import service as wizard
from portal.setup.models import SetupStep

HX = {"HX-Request": "true"}
# Migration 0004 added commands out of Needs Rescheduling, Out of Stock and Cancellation Waiting.
MIGRATION_0004_SLUGS = ("reschedule-package", "cancel-package-from-needs-rescheduling",
                        "cancel-package-from-out-of-stock", "cancel-package-from-cancellation-waiting")
# Migration 0016 added shipment-status commands out of Shipped and Attempted Delivery (cargo shipments).
MIGRATION_0016_SLUGS = ("update-shipment-status-shipped-to-attempted-delivery",
                        "update-shipment-status-shipped-to-delivery-failed",
                        "update-shipment-status-attempted-delivery-to-delivery-failed")
# Migration 0015 added Package Packed for Refund at the counter (partial pickup).
MIGRATION_0015_SLUGS = ("package-packed-for-refund-at-pickup",)


def test_the_installed_flow_has_no_dead_end(app):
    status = flow_editor.flow_status(db.session)
    assert status.stuck == []
    assert status.ok


@pytest.fixture(autouse=True)
def vendor_flow_v1(request):
    """Most tests here start from the vendor's first flow, which leaves Needs Rescheduling without a way out."""
    if request.node.name.startswith("test_the_installed_flow") or "app" not in request.fixturenames:
        yield
        return
    request.getfixturevalue("app")
    db.session.execute(Transition.__table__.delete().where(
        Transition.slug.in_(MIGRATION_0004_SLUGS + MIGRATION_0015_SLUGS + MIGRATION_0016_SLUGS)))
    db.session.commit()
    yield


@pytest.fixture
def admin(make, auth_actions):
    """A logged-in admin."""
    user = make.user("ayse", "admin")
    assert auth_actions.login("ayse").status_code == 302
    return user


def transition(slug: str) -> Transition | None:
    """A transition by slug, fresh from the database."""
    db.session.expire_all()
    return db.session.scalar(select(Transition).where(Transition.slug == slug))


def transition_count() -> int:
    """How many transitions exist."""
    return db.session.scalar(select(func.count()).select_from(Transition))


def step_state() -> str:
    """The recorded state of step 13."""
    db.session.expire_all()
    return wizard.status(db.session, "package_commands").state


def command(**overrides) -> dict:
    """A valid new command: send needs-rescheduling packages back to Waiting (the vendor flow lacks a way out)."""
    data = {"form": "new-transition", "name": "Reschedule", "slug": "reschedule-package",
            "command_code": "DEALLOCATE_PACKAGE_RESERVATIONS", "source_state": str(int(State.NEEDS_RESCHEDULING)),
            "destination_state": str(int(State.WAITING)), "visibility": ["OMS_WEB"],
            "configuration": '{"notify": true}', "is_active": "on"}
    data.update(overrides)
    return data


def edge(source, destination, active=True):
    """A transition as check_flow() sees it."""
    return SimpleNamespace(source_state=int(source), destination_state=None if destination is None else int(destination),
                           is_active=active)


# --- the whole-flow check ----------------------------------------------------------------------------------

def test_check_flow_finds_states_with_no_way_out():
    flow = [edge(State.WAITING, State.PACKED), edge(State.PACKED, State.SHIPPED)]
    assert flow_editor.check_flow(flow) == [State.SHIPPED]


def test_final_states_need_no_way_out_and_unblock_leaves_blocked():
    flow = [edge(State.WAITING, State.BLOCKED), edge(State.BLOCKED, None), edge(State.WAITING, State.DELIVERED)]
    assert flow_editor.check_flow(flow) == []


def test_inactive_commands_do_not_count_and_occupied_states_need_a_way_out():
    flow = [edge(State.WAITING, State.PACKED), edge(State.PACKED, State.DELIVERED, active=False)]
    assert flow_editor.check_flow(flow) == [State.PACKED]
    assert flow_editor.check_flow(flow, occupied=[State.OUT_OF_STOCK]) == [State.PACKED, State.OUT_OF_STOCK]


def test_the_vendor_flow_leaves_needs_rescheduling_without_a_way_out(app):
    status = flow_editor.flow_status(db.session)
    assert status.stuck == [State.NEEDS_RESCHEDULING]
    assert not status.ok
    assert "Needs Rescheduling" in status.message


# --- validating one transition -----------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, field, message", [
    ({"slug": "ship-the-package"}, "slug", "already used"),
    ({"slug": "Reschedule Package"}, "slug", "lower-case letters, digits and hyphens"),
    ({"source_state": "999"}, "source_state", "not a known state"),
    ({"destination_state": "teleported"}, "destination_state", "not a known state"),
    ({"command_code": "LAUNCH_ROCKET"}, "command_code", "Unknown command code 'LAUNCH_ROCKET'"),
    ({"configuration": '{"notify": tru'}, "configuration", "not valid JSON"),
    ({"configuration": "[1, 2]"}, "configuration", "must be a JSON object"),
    ({"destination_state": str(int(State.NEEDS_RESCHEDULING))}, "destination_state", "must differ"),
    ({"destination_state": ""}, "destination_state", "only an unblock"),
    ({"visibility": []}, "visibility", "tick OMS WEB, INSTORE or both"),
    ({"visibility": ["OMS_WEB", "KIOSK"]}, "visibility", "Unknown visibility 'KIOSK'"),
    ({"name": "  "}, "name", "Give the command a name"),
])
def test_validate_transition_refuses_bad_fields(app, overrides, field, message):
    with pytest.raises(ValidationFailed) as caught:
        flow_editor.validate_transition(db.session, flow_editor.form_data(_multidict(command(**overrides))))
    assert caught.value.field == field
    assert message in caught.value.message


def test_validate_transition_cleans_a_good_command(app):
    cleaned = flow_editor.validate_transition(db.session, command(visibility=["INSTORE", "OMS_WEB"], is_active=True))
    assert cleaned == {"name": "Reschedule", "slug": "reschedule-package",
                       "command_code": "DEALLOCATE_PACKAGE_RESERVATIONS", "source_state": 940, "destination_state": 100,
                       "visibility": ["OMS_WEB", "INSTORE"], "configuration": {"notify": True}, "is_active": True}


def test_an_existing_command_keeps_its_own_slug(app):
    ship = transition("ship-the-package")
    data = {"name": "Ship", "slug": "ship-the-package", "command_code": "SHIP_PACKAGE", "source_state": "packed",
            "destination_state": "shipped", "visibility": "OMS_WEB,INSTORE", "configuration": ""}
    assert flow_editor.validate_transition(db.session, data, transition_id=ship.id)["slug"] == "ship-the-package"


def test_a_new_command_into_a_state_with_no_way_out_is_refused_naming_it(app):
    before = transition_count()
    with pytest.raises(ValidationFailed) as caught:
        flow_editor.create_transition(db.session, command(
            name="Mark out of stock", slug="mark-out-of-stock", command_code="BLOCK_PACKAGE_FOR_ACTION",
            source_state=str(int(State.PREPARING)), destination_state=str(int(State.OUT_OF_STOCK))), user_id=None)
    assert caught.value.field == "flow"
    assert "Out of Stock" in caught.value.message
    assert caught.value.details == {"stuck_states": [State.OUT_OF_STOCK]}
    assert transition_count() == before


def test_a_new_command_into_a_state_that_is_already_stuck_is_refused_too(app):
    with pytest.raises(ValidationFailed, match="Needs Rescheduling"):
        flow_editor.create_transition(db.session, command(
            name="Refuse", slug="refuse-from-packed", command_code="PACKAGE_REFUSE_WITH_DENIAL_REASON",
            source_state=str(int(State.PACKED)), destination_state=str(int(State.NEEDS_RESCHEDULING))), user_id=None)
    assert transition("refuse-from-packed") is None


def test_other_changes_are_allowed_while_an_older_problem_remains(app):
    ship = transition("ship-the-package")
    flow_editor.update_transition(db.session, ship.id, {
        "name": "Hand to cargo", "slug": "ship-the-package", "command_code": "SHIP_PACKAGE", "source_state": "500",
        "destination_state": "600", "visibility": ["OMS_WEB"], "configuration": '{"carrier": "yurtici"}',
        "is_active": True}, user_id=None)
    ship = transition("ship-the-package")
    assert (ship.name, ship.visibility, ship.configuration) == ("Hand to cargo", ["OMS_WEB"], {"carrier": "yurtici"})


def test_deactivating_the_only_way_out_of_a_state_holding_packages_is_refused(app, make):
    attempted = transition("update-shipment-status-attempted-delivery")
    # Nothing leads into Attempted Delivery, so with no package there the command may go...
    flow_editor.set_active(db.session, attempted.id, False, user_id=None)
    flow_editor.set_active(db.session, attempted.id, True, user_id=None)
    # ...but not while a package waits there for it.
    make.package(state=State.ATTEMPTED_DELIVERY, click_collect=False)

    with pytest.raises(ValidationFailed) as caught:
        flow_editor.set_active(db.session, attempted.id, False, user_id=None)

    assert "Attempted Delivery" in caught.value.message and "1 package(s)" in caught.value.message
    assert transition("update-shipment-status-attempted-delivery").is_active


def test_package_counts_come_from_one_group_by(app, make):
    store = make.store()
    for state in (State.WAITING, State.WAITING, State.SHIPPED):
        make.package(store=store, state=state)
    assert flow_editor.package_counts(db.session) == {100: 2, 600: 1}


# --- the flowchart -----------------------------------------------------------------------------------------

def chart_svg(app) -> str:
    """The flowchart of the stored transitions as the step page draws it."""
    with app.test_request_context():
        return render_template("setup/_flowchart.html", chart=flowchart.build(flow_editor.list_transitions(db.session)))


def test_flowchart_shows_every_state_and_every_active_command(app):
    transitions = flow_editor.list_transitions(db.session)
    svg = chart_svg(app)

    assert svg.startswith("<svg") and 'aria-labelledby="flow-title"' in svg
    assert '<title id="flow-title">Package state flowchart</title>' in svg
    drawn = " ".join(re.findall(r'<text class="flow-label"[^>]*>([^<]*)</text>', svg))
    for info in STATES.values():
        assert all(word in drawn for word in info.label.split()), info.label
    # A command is one box per name and destination, however many states it starts from.
    names = {(name, dst) for _, name, _, _, dst, _ in VENDOR_FLOW_V1}
    assert svg.count('class="flow-command') == len(names)
    assert svg.count('class="flow-final-inner"') == sum(1 for i in STATES.values() if i.is_final)
    assert "State before" in svg
    # An arrow from every source state into its command, and one from each command to where it leads.
    sources = {(name, dst, src) for _, name, _, src, dst, _ in VENDOR_FLOW_V1}
    assert svg.count('<g class="flow-edge') == len(sources) + len(names)
    # Each command box opens the command's edit dialog; each state box its place in "The flow in words".
    ship = transition("ship-the-package")
    assert f'href="/setup/package-commands/{ship.id}/edit"' in svg
    assert 'href="#flow-state-930"' in svg
    assert len([t for t in transitions if t.is_active]) == len(VENDOR_FLOW_V1)


def test_switched_off_commands_are_not_drawn(app):
    flow_editor.set_active(db.session, transition("update-shipment-status-delivery-failed").id, True, user_id=None)
    ship = transition("ship-the-package")
    ship.is_active = False
    db.session.commit()
    svg = chart_svg(app)
    assert "Ship The Package" not in svg


# --- the step page -----------------------------------------------------------------------------------------

def test_page_shows_the_chart_the_flow_in_words_and_every_command(client, admin):
    page = client.get("/setup/package-commands")
    html = page.get_data(as_text=True)

    assert page.status_code == 200
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="flowchart" id="flowchart"' in html
    assert "The flow in words" in html
    assert "No way out: packages would be stuck here." in html
    assert html.count('<tr id="transition-') == transition_count()
    assert "Packages could get stuck in Needs Rescheduling" in html


def test_admin_adds_the_missing_command_and_the_step_is_done(client, admin):
    response = client.post("/setup/package-commands", data=command(), headers=HX)

    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="transition-create">')
    assert 'id="flow-panel" class="setup-panel" aria-labelledby="flow-panel-title" hx-swap-oob="true"' in html
    assert "The flow is complete" in html
    assert "Command Reschedule (reschedule-package) added." in response.headers["HX-Trigger"]
    added = transition("reschedule-package")
    assert (added.source_state, added.destination_state, added.visibility, added.configuration, added.is_active) == (
        940, 100, ["OMS_WEB"], {"notify": True}, True)
    assert added.position == len(VENDOR_FLOW_V1) + 1
    assert step_state() == SetupStep.DONE


def test_bad_command_is_refused_with_its_message_and_nothing_changes(client, admin):
    before = transition_count()
    response = client.post("/setup/package-commands", data=command(configuration="{oops"), headers=HX)

    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "The configuration is not valid JSON" in html
    assert 'id="new-configuration-error"' in html and "{oops</textarea>" in html
    assert transition_count() == before


def test_a_command_into_a_dead_end_is_refused_on_the_page_naming_the_state(client, admin):
    response = client.post("/setup/package-commands", data=command(
        slug="to-cancellation", source_state="500", destination_state=str(int(State.CANCELLATION_WAITING))))

    assert response.status_code == 422
    assert "Packages would be stuck in Cancellation Waiting" in response.get_data(as_text=True)
    assert transition("to-cancellation") is None


def test_admin_edits_a_command_in_the_dialog(client, admin):
    ship = transition("ship-the-package")
    dialog = client.get(f"/setup/package-commands/{ship.id}/edit", headers=HX)
    assert 'value="ship-the-package"' in dialog.get_data(as_text=True)

    response = client.post(f"/setup/package-commands/{ship.id}", headers=HX, data={
        "form": "edit-transition", "name": "Ship with cargo", "slug": "ship-with-cargo", "command_code": "SHIP_PACKAGE",
        "source_state": "500", "destination_state": "600", "visibility": ["OMS_WEB", "INSTORE"],
        "configuration": "", "is_active": "on"})

    assert response.status_code == 200
    assert "close-modal" in response.headers["HX-Trigger"]
    assert transition("ship-the-package") is None
    assert transition("ship-with-cargo").name == "Ship with cargo"


def test_switching_off_the_way_out_of_shipped_is_refused(client, admin, make):
    make.package(state=State.SHIPPED, click_collect=False)
    update = transition("update-shipment-status-shipped")

    response = client.post(f"/setup/package-commands/{update.id}/active", data={"active": "false"}, headers=HX)

    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Packages would be stuck in Shipped (1 package(s) in Shipped)" in html
    assert "Packages would be stuck in Shipped" in response.headers["HX-Trigger"]
    assert transition("update-shipment-status-shipped").is_active


def test_switching_a_command_off_and_on(client, admin):
    ship = transition("ship-the-package")

    response = client.post(f"/setup/package-commands/{ship.id}/active", data={"active": "false"})

    assert response.status_code == 302
    assert not transition("ship-the-package").is_active
    client.post(f"/setup/package-commands/{ship.id}/active", data={"active": "true"})
    assert transition("ship-the-package").is_active


def test_switching_on_a_command_into_a_dead_end_is_refused(client, admin):
    refuse = transition("refuse-with-denial-reason-from-preparing")
    client.post(f"/setup/package-commands/{refuse.id}/active", data={"active": "false"})
    assert not transition("refuse-with-denial-reason-from-preparing").is_active

    response = client.post(f"/setup/package-commands/{refuse.id}/active", data={"active": "true"}, headers=HX)

    assert response.status_code == 422
    assert "Packages would be stuck in Needs Rescheduling" in response.get_data(as_text=True)
    assert not transition("refuse-with-denial-reason-from-preparing").is_active


def test_checking_the_vendor_flow_marks_the_step_as_needing_work(client, admin):
    response = client.post("/setup/package-commands/check", headers=HX)

    assert response.status_code == 200
    assert step_state() == SetupStep.IN_PROGRESS
    assert "Needs Rescheduling" in response.headers["HX-Trigger"]


def _multidict(data: dict):
    """Form data as the request sees it (lists become repeated keys)."""
    from werkzeug.datastructures import MultiDict

    items = []
    for key, value in data.items():
        for item in value if isinstance(value, list) else [value]:
            items.append((key, item))
    return MultiDict(items)
