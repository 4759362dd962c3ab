"""The REST API for the setup steps that had only a UI: users (2), scenarios (11), package commands (13),
scheduled jobs (15) and the order import (8). An admin's script does what the wizard does, through the same
domain code: the same validation, the same audit rows, the same step states.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from stubs.omnitron_server import PASSWORD, USERNAME, omnitron_sandbox  # noqa: F401

from portal.accounts import auth
from portal.accounts.models import User
from portal.errors import ValidationFailed
from portal.extensions import db
from portal.jobs.models import JobRun, ScheduledJob
from portal.orders import service as orders
from portal.orders.models import OrderImportRun
from portal.packages.models import Package, Transition
from portal.packages.states import State
from portal.scenarios.models import Scenario
from portal.settings import service as settings
from portal.settings.models import SettingChange
from portal.setup import service as wizard
from portal.setup.models import SetupStep
from portal.stores.models import StockLocation
from portal.sync.models import Channel

API = "/api/v1/oms"

# Every new operation with a body that would change something if the caller were allowed.
OPERATIONS = [
    ("get", "/users/", None), ("post", "/users/", {"username": "x", "password": "long-enough-1", "role": "admin"}),
    ("get", "/users/{user}/", None), ("patch", "/users/{user}/", {"role": "admin"}),
    ("post", "/users/{user}/reset_password/", {"password": "long-enough-1"}),
    ("get", "/scenarios/", None), ("post", "/scenarios/", {"channel": 1, "name": "x", "locations": []}),
    ("get", "/scenarios/{scenario}/", None), ("patch", "/scenarios/{scenario}/", {"name": "x"}),
    ("delete", "/scenarios/{scenario}/", None),
    ("post", "/transitions/", {"name": "x"}), ("patch", "/transitions/{transition}/", {"name": "x"}),
    ("delete", "/transitions/{transition}/", None),
    ("get", "/jobs/", None), ("post", "/jobs/", {"name": "x"}), ("get", "/jobs/{job}/", None),
    ("patch", "/jobs/{job}/", {"enabled": False}), ("delete", "/jobs/{job}/", None),
    ("post", "/jobs/{job}/run_now/", None), ("get", "/jobs/{job}/runs/", None),
    ("post", "/orders/import/", {"full": True}), ("get", "/orders/import/", None),
]


def token_headers(user: User) -> dict:
    """The Authorization header of a new token of this user."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, user)}"}


def audit_rows(area: str) -> list[tuple[str, str, int | None]]:
    """(key, action, user id) of the audit rows of an area, oldest first."""
    db.session.expire_all()
    return list(db.session.execute(select(SettingChange.key, SettingChange.action, SettingChange.user_id)
                                   .where(SettingChange.area == area).order_by(SettingChange.id)).tuples())


def count(model) -> int:
    """How many rows a table has."""
    return db.session.scalar(select(func.count()).select_from(model))


def step_state(key: str) -> str:
    """A setup step's recorded state."""
    db.session.expire_all()
    return wizard.status(db.session, key).state


@pytest.fixture
def admin(make):
    """An admin who scripts the setup through the API."""
    return make.user("root", role="admin")


@pytest.fixture
def headers(admin) -> dict:
    """The admin's token header."""
    return token_headers(admin)


@pytest.fixture
def world(app):
    """A channel and three stores: two with coordinates, one without."""
    web = Channel(omnitron_id=1, name="Web", channel_type="web")
    kadikoy = StockLocation(erp_code="IST-KDK", name="Kadıköy", city="Istanbul", max_quota=10,
                            latitude=Decimal("40.99"), longitude=Decimal("29.03"))
    besiktas = StockLocation(erp_code="IST-BSK", name="Beşiktaş", city="Istanbul", max_quota=10,
                             latitude=Decimal("41.04"), longitude=Decimal("29.00"))
    nowhere = StockLocation(erp_code="ANK-1", name="Ankara", city="Ankara", max_quota=10)
    db.session.add_all([web, kadikoy, besiktas, nowhere])
    db.session.commit()
    return {"web": web, "kadikoy": kadikoy, "besiktas": besiktas, "nowhere": nowhere}


# --- Who may call ---------------------------------------------------------------------------------------------

def _targets(make, world) -> dict:
    """One row for each id in OPERATIONS' paths."""
    user = make.user("target", role="staff", stores=[world["kadikoy"]])
    scenario = Scenario(channel_id=world["web"].id, name="Web default", rules=["SORT_BY_PRIORITY"])
    job = ScheduledJob(name="Nightly", job_type="release_expired_pickup_codes", schedule="0 3 * * *", parameters={})
    db.session.add_all([scenario, job])
    db.session.commit()
    transition = db.session.scalar(select(Transition).where(Transition.slug == "ship-the-package"))
    return {"user": user.id, "scenario": scenario.id, "job": job.id, "transition": transition.id}


def _snapshot() -> tuple:
    """What the forbidden calls must leave as it was."""
    db.session.expire_all()
    return (count(User), count(Scenario), count(Transition), count(ScheduledJob), count(JobRun),
            count(OrderImportRun), count(SettingChange),
            db.session.scalar(select(User.role).where(User.username == "target")),
            db.session.scalar(select(Transition.name).where(Transition.slug == "ship-the-package")))


def test_without_a_token_every_admin_endpoint_answers_401_and_changes_nothing(client, make, world):
    ids = _targets(make, world)
    before = _snapshot()
    for method, path, body in OPERATIONS:
        response = getattr(client, method)(API + path.format(**ids), json=body)
        assert response.status_code == 401, (method, path)
        assert response.json["code"] == "not_authenticated"
        assert response.headers["WWW-Authenticate"] == "Token"
    assert _snapshot() == before


@pytest.mark.parametrize("role", ["staff", "brand_manager"])
def test_only_admins_may_call_the_admin_endpoints(client, make, world, role):
    ids = _targets(make, world)
    caller = make.user(f"not-admin-{role}", role=role, stores=[world["besiktas"]] if role == "staff" else None)
    caller_headers = token_headers(caller)
    before = _snapshot()
    for method, path, body in OPERATIONS:
        response = getattr(client, method)(API + path.format(**ids), json=body, headers=caller_headers)
        assert response.status_code == 403, (method, path)
        assert response.json["code"] == "permission_denied"
    assert _snapshot() == before


# --- Step 2: users --------------------------------------------------------------------------------------------

def test_an_admin_creates_a_store_staff_member_by_store_erp_code(client, admin, headers, world):
    response = client.post(f"{API}/users/", headers=headers, json={
        "username": "kadikoy", "password": "first-pass-1", "full_name": "Ayşe Yılmaz", "role": "staff",
        "stores": ["IST-KDK"]})
    assert response.status_code == 201
    body = response.json
    assert body["username"] == "kadikoy" and body["role"] == "staff" and body["is_active"] is True
    assert body["stores"] == [{"id": world["kadikoy"].id, "erp_code": "IST-KDK", "name": "Kadıköy"}]
    assert not any("password" in key for key in body)
    user = db.session.get(User, body["id"])
    assert user.full_name == "Ayşe Yılmaz" and user.store_ids == [world["kadikoy"].id]
    assert auth.authenticate(db.session, "kadikoy", "first-pass-1").id == user.id
    assert audit_rows("user") == [("kadikoy", "create", admin.id)]
    # An active admin and an active staff member with a store: step 2 is done, by this admin.
    assert step_state("users") == SetupStep.DONE
    assert wizard.status(db.session, "users").record.completed_by_id == admin.id


@pytest.mark.parametrize("body, field", [
    ({"username": "x1", "password": "first-pass-1", "role": "staff", "stores": ["NOPE"]}, "stores"),
    ({"username": "x1", "password": "first-pass-1", "role": "staff", "stores": []}, "stores"),
    ({"username": "x1", "password": "first-pass-1", "role": "boss"}, "role"),
    ({"username": "x1", "password": "short", "role": "admin"}, "password"),
    ({"username": "root", "password": "first-pass-1", "role": "admin"}, "username"),
    ({"username": "x1", "password": "first-pass-1", "role": 3}, "role"),
    ({"username": "x1", "password": "first-pass-1", "role": "admin", "is_superuser": True}, "is_superuser"),
    ({"password": "first-pass-1", "role": "admin"}, "username"),
])
def test_a_bad_new_user_is_refused_naming_the_field(client, headers, world, body, field):
    users_before = count(User)
    response = client.post(f"{API}/users/", headers=headers, json=body)
    assert response.status_code == 400
    assert response.json["code"] == "validation_error" and response.json["field"] == field
    assert count(User) == users_before and audit_rows("user") == []


def test_users_are_listed_page_by_page_without_password_hashes(client, make, headers):
    for n in range(4):
        make.user(f"u{n}", role="brand_manager")
    first = client.get(f"{API}/users/?limit=2", headers=headers)
    assert first.status_code == 200
    assert [u["username"] for u in first.json["results"]] == ["root", "u0"]
    assert first.json["previous"] is None and "limit=2" in first.json["next"]
    assert "password_hash" not in first.get_data(as_text=True)
    second = client.get(first.json["next"], headers=headers).json
    assert [u["username"] for u in second["results"]] == ["u1", "u2"]
    third = client.get(second["next"], headers=headers).json
    assert [u["username"] for u in third["results"]] == ["u3"] and third["next"] is None
    back = client.get(third["previous"], headers=headers).json
    assert [u["username"] for u in back["results"]] == ["u1", "u2"]
    refused = client.get(f"{API}/users/?after=abc", headers=headers)
    assert refused.status_code == 400 and refused.json["field"] == "after"


def test_an_admin_reads_and_changes_a_user(client, make, admin, headers, world):
    user = make.user("besiktas", role="staff", stores=[world["kadikoy"]])
    shown = client.get(f"{API}/users/{user.id}/", headers=headers)
    assert shown.status_code == 200 and shown.json["username"] == "besiktas"

    moved = client.patch(f"{API}/users/{user.id}/", headers=headers,
                         json={"stores": ["IST-BSK", "ANK-1"], "full_name": "Mehmet"})
    assert moved.status_code == 200
    assert [s["erp_code"] for s in moved.json["stores"]] == ["ANK-1", "IST-BSK"]  # by name
    assert moved.json["role"] == "staff" and moved.json["full_name"] == "Mehmet"
    # The answer, changed and sent back as it is, deactivates the user and keeps the rest.
    off = client.patch(f"{API}/users/{user.id}/", headers=headers, json={**moved.json, "is_active": False})
    assert off.status_code == 200 and off.json["is_active"] is False

    db.session.expire_all()
    stored = db.session.get(User, user.id)
    assert stored.full_name == "Mehmet" and not stored.active
    assert sorted(stored.store_ids) == sorted([world["besiktas"].id, world["nowhere"].id])
    assert audit_rows("user") == [("besiktas", "update", admin.id), ("besiktas", "update", admin.id),
                                  ("besiktas", "deactivate", admin.id)]
    missing = client.get(f"{API}/users/999999/", headers=headers)
    assert missing.status_code == 404 and missing.json["code"] == "not_found"


def test_a_user_change_is_all_or_nothing(client, admin, headers):
    # Renaming yourself is fine, deactivating yourself is not: neither happens.
    response = client.patch(f"{API}/users/{admin.id}/", headers=headers,
                            json={"full_name": "Renamed", "is_active": False})
    assert response.status_code == 400 and response.json["field"] == "is_active"  # the API's name, not "active"
    demote = client.patch(f"{API}/users/{admin.id}/", headers=headers, json={"role": "staff", "stores": []})
    assert demote.status_code == 400 and demote.json["field"] == "stores"
    last = client.patch(f"{API}/users/{admin.id}/", headers=headers, json={"role": "brand_manager"})
    assert last.status_code == 400 and last.json["field"] == "role" and "last active admin" in last.json["detail"]
    wrong_type = client.patch(f"{API}/users/{admin.id}/", headers=headers, json={"is_active": "no"})
    assert wrong_type.status_code == 400 and wrong_type.json["field"] == "is_active"
    db.session.expire_all()
    stored = db.session.get(User, admin.id)
    assert stored.full_name == "" and stored.active and stored.role == "admin"
    assert audit_rows("user") == []


def test_an_admin_sets_a_new_password_which_lifts_the_lock(client, make, admin, headers):
    user = make.user("locked-out", role="brand_manager")
    for _ in range(client.application.config["LOGIN_MAX_FAILURES"]):
        with pytest.raises(ValidationFailed):
            auth.authenticate(db.session, "locked-out", "wrong-guess-1")
    assert client.get(f"{API}/users/{user.id}/", headers=headers).json["is_locked"] is True
    response = client.post(f"{API}/users/{user.id}/reset_password/", headers=headers,
                           json={"password": "brand-new-pass"})
    assert response.status_code == 200 and response.json["is_locked"] is False
    assert "brand-new-pass" not in response.get_data(as_text=True)
    assert auth.login_lock(db.session, "locked-out") is None
    assert auth.authenticate(db.session, "locked-out", "brand-new-pass").id == user.id
    assert audit_rows("user") == [("locked-out", "reset_password", admin.id)]

    short = client.post(f"{API}/users/{user.id}/reset_password/", headers=headers, json={"password": "short"})
    assert short.status_code == 400 and short.json["field"] == "password"
    assert auth.authenticate(db.session, "locked-out", "brand-new-pass").id == user.id


# --- Step 11: scenarios ---------------------------------------------------------------------------------------

def test_an_admin_creates_changes_and_removes_a_scenario(client, admin, headers, world):
    created = client.post(f"{API}/scenarios/", headers=headers, json={
        "channel": world["web"].id, "name": "Istanbul first", "rules": ["SELECT_BY_QUOTA", "SORT_BY_DISTANCE"],
        "locations": [{"erp_code": "IST-BSK", "priority": 5}, {"stock_location": world["kadikoy"].id,
                                                               "priority": 2}]})
    assert created.status_code == 201
    body = created.json
    assert body["channel"] == world["web"].id and body["channel_name"] == "Web" and body["is_active"] is True
    assert body["rules"] == ["SELECT_BY_QUOTA", "SORT_BY_DISTANCE"]
    # Priorities are stored 1..n in the order given.
    assert [(loc["erp_code"], loc["priority"]) for loc in body["locations"]] == [("IST-KDK", 1), ("IST-BSK", 2)]
    assert step_state("scenarios") == SetupStep.DONE  # the only active channel has an active scenario

    listed = client.get(f"{API}/scenarios/", headers=headers)
    assert listed.status_code == 200 and [s["id"] for s in listed.json] == [body["id"]]
    assert client.get(f"{API}/scenarios/{body['id']}/", headers=headers).json == body

    changed = client.patch(f"{API}/scenarios/{body['id']}/", headers=headers, json={
        "rules": ["SORT_BY_PRIORITY"], "locations": [{"erp_code": "ANK-1"}], "is_active": False})
    assert changed.status_code == 200
    assert changed.json["name"] == "Istanbul first" and changed.json["is_active"] is False
    db.session.expire_all()
    scenario = db.session.get(Scenario, body["id"])
    assert scenario.rules == ["SORT_BY_PRIORITY"] and not scenario.is_active
    assert [row.stock_location_id for row in scenario.locations] == [world["nowhere"].id]
    assert step_state("scenarios") == SetupStep.NEEDS_ATTENTION

    removed = client.delete(f"{API}/scenarios/{body['id']}/", headers=headers)
    assert removed.status_code == 204 and removed.data == b""
    assert count(Scenario) == 0
    assert audit_rows("scenario") == [("Web: Istanbul first", "create", admin.id),
                                      ("Web: Istanbul first", "update", admin.id),
                                      ("Web: Istanbul first", "delete", admin.id)]
    assert client.delete(f"{API}/scenarios/{body['id']}/", headers=headers).status_code == 404


@pytest.mark.parametrize("change, field", [
    ({"rules": ["SORT_BY_PRIORITY", "SORT_BY_DISTANCE"]}, "rules"),
    ({"rules": ["SORT_BY_DISTANCE"], "locations": [{"erp_code": "ANK-1"}]}, "locations"),  # no coordinates
    ({"locations": [{"erp_code": "NOPE"}]}, "locations"),
    ({"locations": []}, "locations"),
    ({"locations": [{"stock_location": "one"}]}, "locations.0.stock_location"),
    ({"locations": [{"erp_code": "IST-KDK", "colour": "red"}]}, "locations.0.colour"),
    ({"channel": 999}, "channel"),  # the API's name, not the domain's channel_id
    ({"channel": "web"}, "channel"),
    ({"name": ""}, "name"),
    ({"is_active": "yes"}, "is_active"),
    ({"colour": "red"}, "colour"),
])
def test_the_editors_validation_refuses_a_scenario_and_changes_nothing(client, headers, world, change, field):
    body = {"channel": world["web"].id, "name": "Web", "rules": ["SORT_BY_PRIORITY"],
            "locations": [{"erp_code": "IST-KDK", "priority": 1}], **change}
    response = client.post(f"{API}/scenarios/", headers=headers, json=body)
    assert response.status_code == 400 and response.json["field"] == field
    assert count(Scenario) == 0 and audit_rows("scenario") == []


def test_a_second_active_scenario_for_a_channel_is_refused(client, headers, world):
    first = {"channel": world["web"].id, "name": "A", "locations": [{"erp_code": "IST-KDK"}]}
    assert client.post(f"{API}/scenarios/", headers=headers, json=first).status_code == 201
    second = client.post(f"{API}/scenarios/", headers=headers, json={**first, "name": "B"})
    assert second.status_code == 400 and second.json["field"] == "is_active"
    assert db.session.scalars(select(Scenario.name)).all() == ["A"]


# --- Step 13: package commands --------------------------------------------------------------------------------

NEW_COMMAND = {"name": "Ship From Packaging", "slug": "ship-from-ready-for-packaging", "command_code": "SHIP_PACKAGE",
               "source_state": "ready_for_packaging", "destination_state": 600, "visibility": ["OMS_WEB"],
               "configuration": {"carrier": "aras"}}


def test_an_admin_adds_changes_and_removes_a_command(client, admin, headers):
    created = client.post(f"{API}/transitions/", headers=headers, json=NEW_COMMAND)
    assert created.status_code == 201
    body = created.json
    assert body["slug"] == NEW_COMMAND["slug"] and body["is_active"] is True
    assert body["source_state"]["code"] == State.READY_FOR_PACKAGING
    assert body["destination_state"]["value"] == "shipped" and body["configuration"] == {"carrier": "aras"}
    # The list endpoint keeps its shape and now has the command.
    listed = client.get(f"{API}/transitions/", headers=headers).json
    assert listed[-1] == body

    changed = client.patch(f"{API}/transitions/{body['id']}/", headers=headers,
                           json={"name": "Ship Early", "visibility": ["INSTORE", "OMS_WEB"]})
    assert changed.status_code == 200 and changed.json["visibility"] == ["OMS_WEB", "INSTORE"]
    assert changed.json["slug"] == NEW_COMMAND["slug"] and changed.json["configuration"] == {"carrier": "aras"}
    off = client.patch(f"{API}/transitions/{body['id']}/", headers=headers, json={"is_active": False})
    assert off.status_code == 200 and off.json["is_active"] is False
    db.session.expire_all()
    stored = db.session.get(Transition, body["id"])
    assert stored.name == "Ship Early" and not stored.is_active

    removed = client.delete(f"{API}/transitions/{body['id']}/", headers=headers)
    assert removed.status_code == 204
    db.session.expire_all()
    assert db.session.get(Transition, body["id"]) is None
    slug = NEW_COMMAND["slug"]
    assert audit_rows("transition") == [(slug, "create", admin.id), (slug, "update", admin.id),
                                        (slug, "deactivate", admin.id), (slug, "delete", admin.id)]


@pytest.mark.parametrize("change, field", [
    ({"slug": "ship-the-package"}, "slug"),  # taken by the vendor flow
    ({"slug": "Ship It"}, "slug"),
    ({"source_state": "somewhere"}, "source_state"),
    ({"source_state": True}, "source_state"),
    ({"destination_state": 12345}, "destination_state"),
    ({"command_code": "LAUNCH_ROCKET"}, "command_code"),
    ({"visibility": ["EVERYWHERE"]}, "visibility"),
    ({"visibility": "OMS_WEB"}, "visibility"),
    ({"configuration": "{}"}, "configuration"),
    # Waiting for Transfer has no command out of it: packages would be stuck there.
    ({"source_state": "preparing", "destination_state": "waiting_for_transfer"}, "flow"),
])
def test_the_editors_validation_refuses_a_command_and_changes_nothing(client, headers, change, field):
    before = count(Transition)
    response = client.post(f"{API}/transitions/", headers=headers, json={**NEW_COMMAND, **change})
    assert response.status_code == 400 and response.json["field"] == field
    if field == "flow":
        assert response.json["stuck_states"] == [State.WAITING_FOR_TRANSFER]
    assert count(Transition) == before and audit_rows("transition") == []


def test_the_only_way_out_of_a_state_can_be_neither_removed_nor_switched_off(client, headers, make):
    make.package(state=State.BLOCKED)
    unblock = db.session.scalar(select(Transition).where(Transition.slug == "unblock-the-package-for-action"))
    removed = client.delete(f"{API}/transitions/{unblock.id}/", headers=headers)
    assert removed.status_code == 400 and removed.json["field"] == "flow"
    assert "1 package(s) in Blocked" in removed.json["detail"]
    off = client.patch(f"{API}/transitions/{unblock.id}/", headers=headers, json={"is_active": False})
    assert off.status_code == 400 and off.json["field"] == "flow"
    db.session.expire_all()
    assert db.session.get(Transition, unblock.id).is_active and audit_rows("transition") == []
    assert client.patch(f"{API}/transitions/999999/", headers=headers, json={"name": "x"}).status_code == 404


# --- Step 15: scheduled jobs ----------------------------------------------------------------------------------

JOB = {"name": "Purge old answers", "job_type": "purge_idempotency_records", "schedule": "30 2 * * *",
       "parameters": {"days": 3}}


def test_an_admin_schedules_changes_runs_and_deletes_a_job(client, admin, headers):
    created = client.post(f"{API}/jobs/", headers=headers, json=JOB)
    assert created.status_code == 201
    body = created.json
    assert body["enabled"] is True and body["parameters"] == {"days": 3} and body["next_run_at"].endswith("Z")
    assert step_state("jobs") == SetupStep.DONE
    assert client.get(f"{API}/jobs/", headers=headers).json == [body]
    assert client.get(f"{API}/jobs/{body['id']}/", headers=headers).json == body

    paused = client.patch(f"{API}/jobs/{body['id']}/", headers=headers,
                          json={"enabled": False, "schedule": "0 4 * * 1"})
    assert paused.status_code == 200
    assert paused.json["enabled"] is False and paused.json["next_run_at"] is None
    assert paused.json["schedule"] == "0 4 * * 1" and paused.json["name"] == JOB["name"]
    db.session.expire_all()
    job = db.session.get(ScheduledJob, body["id"])
    assert not job.enabled and job.schedule == "0 4 * * 1" and job.parameters == {"days": 3}
    assert step_state("jobs") == SetupStep.NEEDS_ATTENTION  # no enabled job any more

    started = client.post(f"{API}/jobs/{body['id']}/run_now/", headers=headers)
    assert started.status_code == 202
    run = db.session.get(JobRun, started.json["run_id"])
    assert run.job_id == body["id"] and run.started_by_id == admin.id and run.trigger == "manual"
    # The test queue runs tasks at once: the run has finished.
    assert started.json["run"]["status"] == run.status == "succeeded"
    assert started.json["run"]["started_by"] == "root"

    removed = client.delete(f"{API}/jobs/{body['id']}/", headers=headers)
    assert removed.status_code == 204
    assert count(ScheduledJob) == 0 and count(JobRun) == 0
    name = JOB["name"]
    assert audit_rows("scheduled_job") == [(name, "create", admin.id), (name, "update", admin.id),
                                           (name, "delete", admin.id)]
    assert client.post(f"{API}/jobs/{body['id']}/run_now/", headers=headers).status_code == 404


def test_a_jobs_runs_are_listed_newest_first_page_by_page(client, headers):
    job_id = client.post(f"{API}/jobs/", headers=headers, json=JOB).json["id"]
    run_ids = [client.post(f"{API}/jobs/{job_id}/run_now/", headers=headers).json["run_id"] for _ in range(3)]
    first = client.get(f"{API}/jobs/{job_id}/runs/?limit=2", headers=headers)
    assert first.status_code == 200
    assert [r["id"] for r in first.json["results"]] == run_ids[:0:-1] and first.json["previous"] is None
    second = client.get(first.json["next"], headers=headers).json
    assert [r["id"] for r in second["results"]] == run_ids[:1] and second["next"] is None
    back = client.get(second["previous"], headers=headers).json
    assert [r["id"] for r in back["results"]] == run_ids[:0:-1]
    assert all(r["status"] == "succeeded" and r["result"].startswith("Deleted") for r in first.json["results"])
    bad = client.get(f"{API}/jobs/{job_id}/runs/?limit=0", headers=headers)
    assert bad.status_code == 400 and bad.json["field"] == "limit"


@pytest.mark.parametrize("change, field", [
    ({"schedule": "every night"}, "schedule"),
    ({"schedule": "0 0 30 2 *"}, "schedule"),  # never fires
    ({"parameters": {"days": 0}}, "parameters"),
    ({"parameters": {"weeks": 1}}, "parameters"),
    ({"parameters": "{\"days\": 3}"}, "parameters"),
    ({"job_type": "mine_bitcoin"}, "job_type"),
    ({"enabled": 1}, "enabled"),
    ({"name": ""}, "name"),
])
def test_a_bad_job_is_refused_naming_the_field(client, headers, change, field):
    response = client.post(f"{API}/jobs/", headers=headers, json={**JOB, **change})
    assert response.status_code == 400 and response.json["field"] == field
    assert count(ScheduledJob) == 0 and audit_rows("scheduled_job") == []


def test_a_bad_job_change_leaves_the_job_as_it_was(client, headers):
    job = client.post(f"{API}/jobs/", headers=headers, json=JOB).json
    client.post(f"{API}/jobs/", headers=headers, json={**JOB, "name": "Other"})
    for change, field in (({"name": "Other"}, "name"), ({"schedule": "61 * * * *"}, "schedule"),
                          ({"next_step": 1}, "next_step")):
        response = client.patch(f"{API}/jobs/{job['id']}/", headers=headers, json=change)
        assert response.status_code == 400 and response.json["field"] == field
    assert client.get(f"{API}/jobs/{job['id']}/", headers=headers).json == job
    assert [action for _, action, _ in audit_rows("scheduled_job")] == ["create", "create"]


# --- Step 8: the order import ---------------------------------------------------------------------------------

FILTER = {"statuses": ["approved"], "channels": [], "start_date": None, "exclude_test_orders": True,
          "page_size": 50}


class TestOrderImport:
    """Fetching orders from the sandbox over HTTP, as "Fetch orders now" does."""

    @pytest.fixture
    def app_config(self, omnitron_sandbox):
        """The portal talks to the sandbox and retries without waiting."""
        return {"OMNITRON_URL": omnitron_sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01, "OMNITRON_RETRIES": 1}

    @pytest.fixture
    def ready(self, admin, make):
        """The Omnitron login saved (step 7) and two of the sandbox's stores in the portal."""
        settings.set_value(db.session, settings.OMNITRON_CLIENT_SETTINGS,
                           {"auth": {"username": USERNAME, "password": PASSWORD}}, user_id=admin.id)
        make.store("IST-KDK")
        make.store("IST-BSK")

    def test_an_admin_starts_an_import_and_reads_its_summary(self, client, admin, headers, ready):
        settings.set_value(db.session, settings.ORDER_FILTERING, FILTER, user_id=None)
        started = client.post(f"{API}/orders/import/", headers=headers)
        assert started.status_code == 202
        run = db.session.get(OrderImportRun, started.json["run_id"])
        assert run.started_by_id == admin.id and run.trigger == "manual" and not run.full
        body = started.json["run"]
        assert body["status"] == run.status == "done" and body["created"] == run.created > 0
        assert body["summary"].startswith(f"Fetched {run.fetched} order(s): {run.created} package(s) created")
        assert count(Package) == run.created

        again = client.post(f"{API}/orders/import/", headers=headers, json={"full": True})
        assert again.status_code == 202 and again.json["run"]["full"] is True
        assert again.json["run"]["already_imported"] == run.created and again.json["run"]["created"] == 0
        listed = client.get(f"{API}/orders/import/", headers=headers)
        assert listed.status_code == 200 and listed.json["running"] is False
        assert [r["id"] for r in listed.json["results"]] == [again.json["run_id"], run.id]
        assert listed.json["results"][1]["started_by"] == "root"
        assert len(client.get(f"{API}/orders/import/?limit=1", headers=headers).json["results"]) == 1
        assert count(Package) == run.created

    def test_a_second_start_while_one_runs_is_a_conflict(self, client, admin, headers, ready):
        settings.set_value(db.session, settings.ORDER_FILTERING, FILTER, user_id=None)
        queued = orders.start_run(db.session, user_id=admin.id)  # no worker has taken it yet
        refused = client.post(f"{API}/orders/import/", headers=headers, json={"full": False})
        assert refused.status_code == 409 and refused.json["code"] == "import_running"
        assert f"run #{queued.id}" in refused.json["detail"]
        assert count(OrderImportRun) == 1
        listed = client.get(f"{API}/orders/import/", headers=headers).json
        assert listed["running"] is True and listed["results"][0]["status"] == "queued"

    def test_bad_input_or_a_missing_filter_starts_nothing(self, client, headers, ready):
        no_filter = client.post(f"{API}/orders/import/", headers=headers)
        assert no_filter.status_code == 400 and no_filter.json["field"] == "order_filtering"
        settings.set_value(db.session, settings.ORDER_FILTERING, FILTER, user_id=None)
        for body, field in (({"full": "yes"}, "full"), ({"since": "2026-01-01"}, "since")):
            response = client.post(f"{API}/orders/import/", headers=headers, json=body)
            assert response.status_code == 400 and response.json["field"] == field
        not_json = client.post(f"{API}/orders/import/", headers=headers, data="full",
                               content_type="application/json")
        assert not_json.status_code == 400
        assert client.get(f"{API}/orders/import/?limit=x", headers=headers).json["field"] == "limit"
        assert count(OrderImportRun) == 0 and count(Package) == 0
