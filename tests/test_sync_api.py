"""The sync endpoints of the REST API: is_required, execute and get_async_status for each kind (admins only)."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from stubs.omnitron_server import credentials, omnitron_sandbox, omnitron_sandbox_factory  # noqa: F401

from portal.accounts import auth
from portal.extensions import db
from portal.stores.models import StockLocation
from portal.sync import service as sync
from portal.sync.models import AddressNode, Channel, SyncJob

PREFIXES = {"addresses": "/api/v1/oms/setup/addresses/", "stock_locations": "/api/v1/oms/stock_locations/",
            "channels": "/api/v1/oms/channels/"}
TABLES = {"addresses": AddressNode, "stock_locations": StockLocation, "channels": Channel}


@pytest.fixture
def app_config(omnitron_sandbox):
    """The portal talks to the sandbox and retries without waiting."""
    return {"OMNITRON_URL": omnitron_sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01}


@pytest.fixture
def admin_headers(make):
    """An admin's token header."""
    return {"Authorization": f"Token {auth.create_api_token(db.session, make.user('api-admin', role='admin'))}"}


@pytest.mark.parametrize("kind", list(PREFIXES))
def test_admin_checks_copies_and_follows_each_kind(client, credentials, immediate_queue, admin_headers, kind):
    prefix = PREFIXES[kind]
    status = client.get(f"{prefix}get_async_status/", headers=admin_headers)
    assert status.status_code == 200
    assert status.json["status"] == "not_started" and status.json["job_id"] is None

    required = client.get(f"{prefix}is_required/", headers=admin_headers)
    assert required.status_code == 200
    assert required.json["is_required"] is True and required.json["local_count"] == 0
    assert required.json["reason"].startswith("No ") and required.json["remote_count"] is None

    started = client.post(f"{prefix}execute/", headers=admin_headers)
    assert started.status_code == 202
    job = started.json
    assert job["kind"] == kind and job["status"] == "done" and job["progress"] == 100
    assert job["created"] == job["processed"] == job["total"] > 0

    status = client.get(f"{prefix}get_async_status/", headers=admin_headers)
    assert status.json == job
    copied = db.session.scalar(select(func.count()).select_from(TABLES[kind]))
    assert copied == job["created"]

    required = client.get(f"{prefix}is_required/", headers=admin_headers).json
    assert required["is_required"] is False
    assert required["local_count"] == required["remote_count"] == copied

    again = client.post(f"{prefix}execute/", headers=admin_headers).json
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, copied)
    first = client.get(f"{prefix}get_async_status/?job_id={job['job_id']}", headers=admin_headers).json
    assert first["job_id"] == job["job_id"] and first["created"] == copied


def test_a_second_execute_while_a_job_runs_is_refused_with_409(client, credentials, admin_headers):
    running = sync.start_job(db.session, "channels", user_id=None)
    answer = client.post("/api/v1/oms/channels/execute/", headers=admin_headers)
    assert answer.status_code == 409
    assert answer.json["code"] == "sync_already_running"
    assert f"already running (job #{running.id}, 0% done)" in answer.json["detail"]
    assert db.session.scalar(select(func.count()).select_from(SyncJob)) == 1
    status = client.get("/api/v1/oms/channels/get_async_status/", headers=admin_headers).json
    assert status["status"] == "queued" and status["job_id"] == running.id


def test_unknown_or_foreign_job_ids_and_bad_input(client, credentials, immediate_queue, admin_headers):
    job_id = client.post("/api/v1/oms/channels/execute/", headers=admin_headers).json["job_id"]
    foreign = client.get(f"/api/v1/oms/setup/addresses/get_async_status/?job_id={job_id}", headers=admin_headers)
    assert foreign.status_code == 404 and foreign.json["code"] == "not_found"
    bad = client.get("/api/v1/oms/channels/get_async_status/?job_id=abc", headers=admin_headers)
    assert bad.status_code == 400 and bad.json["field"] == "job_id"


def test_without_credentials_execute_says_to_save_them_and_starts_nothing(client, admin_headers):
    answer = client.post("/api/v1/oms/setup/addresses/execute/", headers=admin_headers)
    assert answer.status_code == 400
    assert answer.json["detail"] == "Save the Omnitron username and password in step 7 (OMS credentials) first."
    assert db.session.scalar(select(func.count()).select_from(SyncJob)) == 0


def test_an_unreachable_omnitron_answers_502_with_the_reason(client, app, credentials, immediate_queue,
                                                             admin_headers):
    client.post("/api/v1/oms/channels/execute/", headers=admin_headers)
    app.config["OMNITRON_URL"] = "http://127.0.0.1:9"
    answer = client.get("/api/v1/oms/channels/is_required/", headers=admin_headers)
    assert answer.status_code == 502
    assert answer.json["code"] == "omnitron_unreachable"
    assert "cannot be reached (connection refused)" in answer.json["detail"]

    failed = client.post("/api/v1/oms/channels/execute/", headers=admin_headers)
    assert failed.status_code == 202 and failed.json["status"] == "failed"
    assert "cannot be reached" in failed.json["error"]


def test_only_admins_with_a_token_may_sync(client, credentials, make):
    staff_token = auth.create_api_token(db.session, make.user("kasa", role="staff"))
    manager_token = auth.create_api_token(db.session, make.user("mudur", role="brand_manager"))
    for prefix in PREFIXES.values():
        assert client.get(f"{prefix}is_required/").status_code == 401
        for token in (staff_token, manager_token):
            headers = {"Authorization": f"Token {token}"}
            refused = client.post(f"{prefix}execute/", headers=headers)
            assert refused.status_code == 403
            assert refused.json["detail"] == "Only admins may copy data from Omnitron."
            assert client.get(f"{prefix}get_async_status/", headers=headers).status_code == 403
    assert db.session.scalar(select(func.count()).select_from(SyncJob)) == 0


def test_the_sync_endpoints_are_documented(client):
    paths = client.get("/api/v1/openapi.json").json["paths"]
    for prefix in PREFIXES.values():
        assert "get" in paths[f"{prefix}is_required/"]
        assert "409" in paths[f"{prefix}execute/"]["post"]["responses"]
        assert paths[f"{prefix}get_async_status/"]["get"]["parameters"][0]["name"] == "job_id"
