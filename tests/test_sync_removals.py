"""Records deleted in Omnitron: a full copy deactivates them here (never deletes them) and counts them as removed.

Everything goes over real HTTP to the sandbox, whose /__sandbox__/mutate can delete records ("delete": [ids])
and whose reset brings them back.
"""
from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select, update
from stubs.omnitron_server import credentials, omnitron_sandbox  # noqa: F401

from portal.accounts import auth
from portal.db_types import utcnow
from portal.extensions import db
from portal.outbox.models import OutboxMessage
from portal.scenarios.models import Scenario, ScenarioLocation
from portal.settings import service as settings
from portal.stores.models import StockLocation
from portal.sync import service as sync
from portal.sync.kinds import REMOVED
from portal.sync.models import AddressNode, Channel, SyncJob

PAGE_SIZE = 500
HX = {"HX-Request": "true"}
# kind -> (sandbox resource, table, where the kind's rows of that resource are)
KINDS = {"addresses": ("districts", AddressNode, (AddressNode.level == "district",)),
         "stock_locations": ("stock_locations", StockLocation, ()),
         "channels": ("channels", Channel, ())}
API = {"addresses": "/api/v1/oms/setup/addresses/", "stock_locations": "/api/v1/oms/stock_locations/",
       "channels": "/api/v1/oms/channels/"}


@pytest.fixture
def app_config(omnitron_sandbox):
    """The portal talks to the sandbox, retries without waiting, and reads 500 records a page."""
    return {"OMNITRON_URL": omnitron_sandbox.url, "OMNITRON_BACKOFF_SECONDS": 0.01, "SYNC_PAGE_SIZE": PAGE_SIZE}


def run(kind: str, *, changed_only: bool = False) -> SyncJob:
    """Start a job of a kind and run it here, as a worker would."""
    job = sync.start_job(db.session, kind, user_id=None, changed_only=changed_only)
    return sync.sync_kind(db.session, job.id, token=job.task_id)


def rows(kind: str) -> dict[int, tuple[bool, str]]:
    """The kind's rows (districts for addresses) by Omnitron id: (is_active, remote_modified_at)."""
    _, model, where = KINDS[kind]
    db.session.rollback()
    return {oid: (active, modified) for oid, active, modified in db.session.execute(
        select(model.omnitron_id, model.is_active, model.remote_modified_at).where(*where))}


def removed_ids(kind: str) -> list[int]:
    """Omnitron ids of the kind's rows marked removed."""
    return sorted(oid for oid, (active, modified) in rows(kind).items() if modified == REMOVED)


def store_events(event_type: str = "stock_location.updated") -> list[dict]:
    """The payloads of the recorded store events of a type, oldest first."""
    return [m.payload["payload"] for m in db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.kind == "event", OutboxMessage.event_type == event_type).order_by(OutboxMessage.id))]


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_full_copy_deactivates_what_omnitron_deleted_and_keeps_the_rows(credentials, omnitron_sandbox, kind):
    resource = KINDS[kind][0]
    first = run(kind)
    assert first.status == SyncJob.DONE and first.removed == 0
    before = rows(kind)
    last = max(before)
    # The first id, one in the middle and the last: the stretches below the first page, inside a page
    # and above the last page are all looked at.
    gone = sorted({1, last // 2, last})
    omnitron_sandbox.mutate(resource, delete=gone)

    check = sync.check_required(db.session, kind)
    assert check.required is True
    assert f"At least {len(gone)} seem to have been deleted in Omnitron: a copy deactivates them here" in check.reason
    assert check.local_count - check.remote_count == len(gone)

    job = run(kind)

    assert job.status == SyncJob.DONE
    assert (job.removed, job.created, job.updated, job.failed) == (len(gone), 0, 0, 0)
    assert f"{len(gone)} removed: Omnitron no longer has them, so they were deactivated here" in \
        sync.summary_text(job)
    after = rows(kind)
    assert set(after) == set(before)  # nothing was deleted
    assert removed_ids(kind) == gone and not any(after[i][0] for i in gone)
    assert {i: after[i] for i in after if i not in gone} == {i: before[i] for i in before if i not in gone}
    assert sync.check_required(db.session, kind).required is False

    again = run(kind)
    assert (again.removed, again.updated, again.created) == (0, 0, 0)
    assert removed_ids(kind) == gone


def test_a_store_that_comes_back_is_reactivated_and_each_change_is_announced(credentials, omnitron_sandbox):
    run("stock_locations")
    kadikoy = db.session.scalar(select(StockLocation).where(StockLocation.omnitron_id == 5))
    omnitron_sandbox.mutate("stock_locations", delete=[5])

    removed = run("stock_locations")

    assert removed.removed == 1
    db.session.refresh(kadikoy)
    assert kadikoy.is_active is False and kadikoy.remote_modified_at == REMOVED
    announced = store_events()
    assert [(e["id"], e["omnitron_id"], e["is_active"], e["changed_fields"]) for e in announced] == [
        (kadikoy.id, 5, False, ["is_active"])]

    # A store Omnitron itself switches off is copied as inactive: an update, not a removal.
    omnitron_sandbox.mutate("stock_locations", ids=[7], changes={"is_active": False})
    switched = run("stock_locations")
    assert (switched.updated, switched.removed) == (1, 0)
    assert rows("stock_locations")[7][0] is False and 7 not in removed_ids("stock_locations")

    omnitron_sandbox._control("POST", "reset")  # store 5 is back, store 7 active again
    assert sync.check_required(db.session, "stock_locations").required is True
    back = run("stock_locations")

    assert (back.updated, back.removed, back.created) == (2, 0, 0)
    db.session.refresh(kadikoy)
    assert kadikoy.is_active is True and kadikoy.remote_modified_at != REMOVED
    assert removed_ids("stock_locations") == []
    assert [(e["omnitron_id"], e["is_active"], e["changed_fields"]) for e in store_events()[1:]] == [
        (7, False, ["is_active"]), (5, True, ["is_active"]), (7, True, ["is_active"])]
    assert sync.check_required(db.session, "stock_locations").required is False


def test_a_store_made_again_in_omnitron_under_a_new_id_takes_its_old_row_back(credentials, omnitron_sandbox, make):
    run("stock_locations")
    old = db.session.scalar(select(StockLocation).where(StockLocation.omnitron_id == 5))
    staff = make.user("deniz", role="staff", stores=[old])
    omnitron_sandbox.mutate("stock_locations", delete=[5])
    run("stock_locations")
    added = omnitron_sandbox.mutate("stock_locations", add=1)["added_ids"][0]
    omnitron_sandbox.mutate("stock_locations", ids=[added], changes={"erp_code": old.erp_code})

    job = run("stock_locations")

    assert (job.created, job.updated, job.failed) == (0, 1, 0)
    db.session.refresh(old)
    assert (old.omnitron_id, old.is_active) == (added, True)
    db.session.refresh(staff)
    assert [s.id for s in staff.stock_locations] == [old.id]


def test_a_copy_resumed_after_its_worker_died_deactivates_exactly_what_is_gone(credentials, omnitron_sandbox):
    run("addresses")
    omnitron_sandbox.mutate("districts", delete=[10, 2600])
    # The worker copies districts pages 1 and 2, then dies: its job stays "running" with the cursor of
    # page 2 and a heartbeat that gets older (moved back here rather than waited for).
    omnitron_sandbox.add_fault("/api/v1/districts/", page=3, status=500, times=None)
    killed = run("addresses")
    omnitron_sandbox._control("DELETE", "faults")
    assert killed.cursor["page"] == 2 and killed.removed == 1 and removed_ids("addresses") == [10]
    db.session.execute(update(SyncJob).where(SyncJob.id == killed.id).values(
        status=SyncJob.RUNNING, error="", finished_at=None, heartbeat_at=utcnow() - timedelta(minutes=3)))
    db.session.commit()
    # Meanwhile a district on an already copied page is deleted: every later page starts one record further,
    # so district 1002 moves from page 3 to page 2, which the resumed job will not read again.
    omnitron_sandbox.mutate("districts", delete=[700])

    resumed = run("addresses")

    assert resumed.status == SyncJob.DONE and resumed.cursor["resumed_from"] == killed.id
    assert resumed.removed == 2
    # 1002 was skipped by the shift, but it is still in Omnitron: it must stay active.
    assert rows("addresses")[1002] == (True, rows("addresses")[1002][1]) and 1002 not in removed_ids("addresses")
    assert removed_ids("addresses") == [10, 2600]
    # 700 went behind the job's back: the counts tell, and the next copy deactivates it.
    check = sync.check_required(db.session, "addresses")
    assert check.required is True and "Omnitron has 2,997 districts; the portal has 2,998." in check.reason
    assert run("addresses").removed == 1
    assert removed_ids("addresses") == [10, 700, 2600]
    assert sync.check_required(db.session, "addresses").required is False


def test_a_changed_only_copy_reads_the_changes_and_never_deactivates(credentials, omnitron_sandbox):
    run("channels")
    omnitron_sandbox.mutate("channels", delete=[2, 3])
    omnitron_sandbox.mutate("channels", ids=[5], changes={"name": "Web (new)"})

    quick = run("channels", changed_only=True)

    assert quick.status == SyncJob.DONE
    assert (quick.processed, quick.updated, quick.removed) == (1, 1, 0)
    assert "records deleted in Omnitron are found by a full copy" in sync.summary_text(quick)
    assert removed_ids("channels") == [] and rows("channels")[2][0] is True
    asked = [r["query"] for r in omnitron_sandbox.requests() if r["path"] == "/api/v1/channels/"]
    assert all("modified_date__gt" in q for q in asked[-2:])
    assert sync.check_required(db.session, "channels").required is True

    full = run("channels")
    assert (full.removed, full.updated) == (2, 0)
    assert removed_ids("channels") == [2, 3]


def test_the_api_counts_removed_records_and_takes_changed_only(client, credentials, immediate_queue, make,
                                                               omnitron_sandbox):
    headers = {"Authorization": f"Token {auth.create_api_token(db.session, make.user('api-admin', role='admin'))}"}
    prefix = API["channels"]
    assert client.post(f"{prefix}execute/", headers=headers).json["removed"] == 0
    omnitron_sandbox.mutate("channels", delete=[8])

    required = client.get(f"{prefix}is_required/", headers=headers).json
    assert required["is_required"] is True and (required["local_count"], required["remote_count"]) == (8, 7)
    assert required["reason"] == ("Omnitron has 7 channels; the portal has 8. At least 1 seems to have been deleted "
                                  "in Omnitron: a copy deactivates them here (they are kept for what already uses "
                                  "them).")

    bad = client.post(f"{prefix}execute/", headers=headers, json={"changed_only": "yes"})
    assert bad.status_code == 400 and "changed_only must be true or false" in bad.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(SyncJob)) == 1

    quick = client.post(f"{prefix}execute/", headers=headers, json={"changed_only": True})
    assert quick.status_code == 202
    assert (quick.json["changed_only"], quick.json["removed"], quick.json["processed"]) == (True, 0, 0)

    full = client.post(f"{prefix}execute/", headers=headers)
    assert full.status_code == 202 and full.json["removed"] == 1 and full.json["changed_only"] is False
    status = client.get(f"{prefix}get_async_status/", headers=headers).json
    assert (status["job_id"], status["status"], status["removed"]) == (full.json["job_id"], "done", 1)
    assert client.get(f"{prefix}is_required/", headers=headers).json["is_required"] is False
    assert db.session.scalar(select(Channel.is_active).where(Channel.omnitron_id == 8)) is False
    document = client.get("/api/v1/openapi.json").json
    ref = document["paths"][f"{prefix}get_async_status/"]["get"]["responses"]["200"]["content"]["application/json"]
    schema = document["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[-1]]
    assert "removed" in schema["required"] and "removed" in schema["properties"]


def test_the_wizard_summary_shows_the_removed_count(client, credentials, immediate_queue, make, auth_actions,
                                                    omnitron_sandbox):
    make.user("ayse", role="admin")
    auth_actions.login("ayse")
    client.post("/setup/stock-locations/copy", headers=HX)
    omnitron_sandbox.mutate("stock_locations", delete=[3, 4])

    html = client.post("/setup/stock-locations/copy", headers=HX).get_data(as_text=True)

    assert '<dd id="sync-removed">2</dd>' in html and '<dd id="sync-unchanged">98</dd>' in html
    assert ("98 stock locations read from Omnitron: 0 created, 0 updated, 98 unchanged, 0 failed. 2 removed: "
            "Omnitron no longer has them, so they were deactivated here") in html
    job = db.session.scalar(select(SyncJob).order_by(SyncJob.id.desc()))
    row = html.split(f'<tr id="sync-job-{job.id}">')[1].split("</tr>")[0]
    assert "<td>2</td>" in row
    page = client.get("/setup/stock-locations").get_data(as_text=True)
    assert '<dd id="sync-removed">2</dd>' in page and "never deleted" in page


def _options(html: str, select_id: str) -> set[str]:
    """The values a <select> offers."""
    body = html.split(f'id="{select_id}"', 1)[1].split("</select>", 1)[0]
    return {part.split('"', 1)[0] for part in body.split('<option value="')[1:]} - {""}


def test_deactivated_stores_and_channels_are_no_longer_offered_but_what_uses_them_keeps_working(
        client, credentials, make, auth_actions, omnitron_sandbox):
    run("stock_locations")
    run("channels")
    gone_store = db.session.scalar(select(StockLocation).where(StockLocation.omnitron_id == 5))
    kept_store = db.session.scalar(select(StockLocation).where(StockLocation.omnitron_id == 6))
    by_omnitron_id = dict(db.session.execute(select(Channel.omnitron_id, Channel.id)).tuples().all())
    staff = make.user("deniz", role="staff", stores=[gone_store])
    scenario = Scenario(channel_id=by_omnitron_id[1], name="Istanbul", is_active=True, rules=["SORT_BY_PRIORITY"])
    scenario.locations = [ScenarioLocation(stock_location_id=gone_store.id, priority=1)]
    db.session.add(scenario)
    db.session.commit()
    settings.set_value(db.session, settings.ORDER_FILTERING, {"statuses": ["approved"], "channels": [2]}, user_id=None)
    omnitron_sandbox.mutate("stock_locations", delete=[5])
    omnitron_sandbox.mutate("channels", delete=[1, 2, 3])
    run("stock_locations")
    run("channels")
    gone_id, kept_id, scenario_id = gone_store.id, kept_store.id, scenario.id
    make.user("ayse", role="admin")
    auth_actions.login("ayse")

    # Staff store assignment: a new user cannot be given the store...
    users_page = client.get("/setup/users").get_data(as_text=True)
    assert f'name="stores" value="{kept_id}"' in users_page
    assert f'name="stores" value="{gone_id}"' not in users_page
    # ...but the staff member keeps it, and their edit form still shows it, ticked and marked inactive.
    edit = client.get(f"/setup/users/{staff.id}/edit", headers=HX).get_data(as_text=True)
    assert f'name="stores" value="{gone_id}" checked' in edit and "inactive" in edit

    # The scenario editor offers neither the store nor the channels Omnitron no longer has...
    # (show_all: a new scenario lists no location until asked; see tests/test_scenario_editor.py)
    new = client.get(f"/setup/scenarios?new={by_omnitron_id[4]}&show_all=1", headers=HX).get_data(as_text=True)
    new = new.split('id="scenario-editor"', 1)[1]
    assert f'id="location-{kept_id}"' in new and f'id="location-{gone_id}"' not in new
    offered = _options(new, "scenario-channel")
    assert str(by_omnitron_id[4]) in offered and not {str(by_omnitron_id[i]) for i in (1, 2, 3)} & offered
    # ...while the scenario that uses them still shows both, so it can be changed knowingly.
    existing = client.get(f"/setup/scenarios?edit={scenario_id}", headers=HX).get_data(as_text=True)
    existing = existing.split('id="scenario-editor"', 1)[1]
    assert f'id="location-{gone_id}" name="location" value="{gone_id}" checked' in existing
    assert str(by_omnitron_id[1]) in _options(existing, "scenario-channel")
    assert [row.stock_location_id for row in db.session.get(Scenario, scenario_id).locations] == [gone_id]

    # ORDER_FILTERING: a channel still chosen stays shown; the other removed ones are gone.
    filtering = client.get("/setup/order-filtering").get_data(as_text=True)
    assert 'name="channels" value="2" checked' in filtering
    assert 'name="channels" value="3"' not in filtering and 'name="channels" value="4"' in filtering


def test_the_sandbox_deletes_records_until_reset(omnitron_sandbox):
    with omnitron_sandbox.client() as omnitron:
        before = omnitron.count("/api/v1/stock_locations/")
        answer = omnitron_sandbox.mutate("stock_locations", delete=[1, 50])
        assert (answer["deleted_ids"], answer["count"]) == ([1, 50], before - 2)
        ids = [r["id"] for r in omnitron.iter_records("/api/v1/stock_locations/", page_size=20)]
        assert len(ids) == before - 2 and 1 not in ids and 50 not in ids and ids == sorted(ids)
        refused = requests.post(f"{omnitron_sandbox.url}/__sandbox__/mutate", timeout=5,
                                json={"resource": "stock_locations", "delete": [50]})
        assert refused.status_code == 400 and "without the deleted ones" in refused.json()["detail"]
        token = omnitron.get("/api/v1/stock_locations/", {"limit": 1})  # logs in
        assert token["count"] == before - 2
        omnitron_sandbox._control("POST", "reset")
    with omnitron_sandbox.client() as omnitron:
        assert omnitron.count("/api/v1/stock_locations/") == before
        assert omnitron.get("/api/v1/stock_locations/50/")["id"] == 50
